"""Where a workflow reads and writes: a path on the agent's host, or an object store through pyarrow.fs
(which MLflow already brings into the agent's venv), so batches stream from and to either alike.

  s3://bucket/key                                pyarrow.fs.S3FileSystem
  abfss://container@account.dfs.core.windows.net/path, abfs://...   pyarrow.fs.AzureFileSystem
  az://container/path                            (account from AZURE_STORAGE_ACCOUNT or the connection string)

Credentials come only from the host's standard environment and credential chains, never from the
workflow spec, the request or the agent's state:
  S3:    the AWS SDK chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN], AWS_PROFILE and
         ~/.aws, instance/container roles); AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible store.
  Azure: AZURE_STORAGE_CONNECTION_STRING (AccountName, AccountKey or SharedAccessSignature, BlobEndpoint),
         else AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN, else DefaultAzureCredential (AZURE_CLIENT_ID and
         friends, managed identity, the az CLI login).
The scoring process inherits the agent's environment, so these are set where the agent runs (its
systemd unit's EnvironmentFile, ~/.aws of its user)."""

import functools
import importlib
import os
import re
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

# scheme -> (pyarrow module that holds its client, the class, what it is)
SCHEMES: Dict[str, Tuple[str, str]] = {
    "s3": ("pyarrow._s3fs", "S3FileSystem"),
    "abfss": ("pyarrow._azurefs", "AzureFileSystem"),
    "abfs": ("pyarrow._azurefs", "AzureFileSystem"),
    "az": ("pyarrow._azurefs", "AzureFileSystem"),
}
ABFS_HOST = re.compile(r"^(?P<container>[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?)@(?P<account>[a-z0-9]{3,24})\.(?:dfs|blob)\.[a-z0-9.]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?$")


def scheme_of(location: str) -> str:
    return location.split("://", 1)[0].lower() if "://" in location else ""


def is_remote(location: str) -> bool:
    return scheme_of(location) in SCHEMES


@functools.lru_cache(maxsize=None)
def client_missing(scheme: str) -> Optional[str]:
    """Why this python cannot reach `scheme` (None when it can)."""
    module, cls = SCHEMES[scheme]
    try:
        importlib.import_module(module)
    except ImportError as err:
        return f"{scheme}:// needs pyarrow.fs.{cls}, which this host's pyarrow lacks ({err})"
    return None


def check_remote(location: str) -> str:
    """The location normalised, or ValueError naming what is wrong (the caller names the field)."""
    scheme = scheme_of(location)
    missing = client_missing(scheme)
    if missing:
        raise ValueError(missing)
    parts = urlsplit(location)
    if parts.query or parts.fragment:
        raise ValueError(f"{scheme}:// location must not have a query or fragment")
    key = parts.path.lstrip("/")
    if scheme == "s3":
        if not BUCKET.match(parts.netloc):
            raise ValueError("s3:// location must be s3://<bucket>/<key> with a valid bucket name")
    elif scheme == "az":
        if not CONTAINER.match(parts.netloc):
            raise ValueError("az:// location must be az://<container>/<path> with a valid container name")
    elif not ABFS_HOST.match(parts.netloc):
        raise ValueError(f"{scheme}:// location must be {scheme}://<container>@<account>.dfs.core.windows.net/<path>")
    if not key or "//" in key or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"{scheme}:// location needs a path inside the bucket or container, without empty, . or .. parts")
    return f"{scheme}://{parts.netloc}/{key.rstrip('/')}"


def _connection_string() -> Dict[str, str]:
    raw = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    pairs = (item.split("=", 1) for item in raw.split(";") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs}


def _azure(account: Optional[str]) -> Any:
    from pyarrow.fs import AzureFileSystem

    conn = _connection_string()
    account = account or conn.get("AccountName") or os.environ.get("AZURE_STORAGE_ACCOUNT")
    if not account:
        raise ValueError("az:// needs the storage account: set AZURE_STORAGE_ACCOUNT or AZURE_STORAGE_CONNECTION_STRING on the agent's host")
    kwargs: Dict[str, Any] = {}
    if conn and conn.get("AccountName", account) == account:
        if conn.get("AccountKey"):
            kwargs["account_key"] = conn["AccountKey"]
        elif conn.get("SharedAccessSignature"):
            kwargs["sas_token"] = conn["SharedAccessSignature"]
        if conn.get("BlobEndpoint"):  # an emulator (Azurite) or a custom domain: http://127.0.0.1:10000/<account>
            endpoint = urlsplit(conn["BlobEndpoint"])
            kwargs.update(blob_storage_authority=endpoint.netloc, blob_storage_scheme=endpoint.scheme,
                          dfs_storage_authority=endpoint.netloc, dfs_storage_scheme=endpoint.scheme)  # fmt: skip
    if not kwargs.get("account_key") and not kwargs.get("sas_token"):
        if os.environ.get("AZURE_STORAGE_KEY"):
            kwargs["account_key"] = os.environ["AZURE_STORAGE_KEY"]
        elif os.environ.get("AZURE_STORAGE_SAS_TOKEN"):
            kwargs["sas_token"] = os.environ["AZURE_STORAGE_SAS_TOKEN"]
    return AzureFileSystem(account, **kwargs)


def open_store(location: str) -> Tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a location; local paths get the local filesystem."""
    from pyarrow import fs

    scheme = scheme_of(location)
    if not scheme:
        return fs.LocalFileSystem(), location
    parts = urlsplit(location)
    key = parts.path.lstrip("/")
    if scheme == "s3":
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not endpoint and not region:  # AWS itself, no region configured: the bucket's own
            try:
                region = fs.resolve_s3_region(parts.netloc)
            except OSError:
                region = None  # the SDK's default; the read or write names the error
        return fs.S3FileSystem(endpoint_override=endpoint or None, region=region), f"{parts.netloc}/{key}"
    if scheme == "az":
        return _azure(None), f"{parts.netloc}/{key}"
    match = ABFS_HOST.match(parts.netloc)
    assert match is not None  # check_remote accepted it
    return _azure(match["account"]), f"{match['container']}/{key}"


def input_paths(location: str, extensions: Tuple[str, ...]) -> Tuple[Any, List[str]]:
    """The store and the files to read: the location itself, or a folder's files with the format's
    extension in name order."""
    from pyarrow import fs

    store, path = open_store(location)
    where = "the agent's host" if not is_remote(location) else "the store"
    info = store.get_file_info(path)
    if info.type == fs.FileType.File:
        return store, [path]
    if info.type != fs.FileType.Directory:
        raise ValueError(f"input {location} does not exist on {where}")
    found = store.get_file_info(fs.FileSelector(path, recursive=False))
    names = sorted(i.path for i in found if i.type == fs.FileType.File and i.path.lower().endswith(extensions))
    if not names:
        raise ValueError(f"input folder {location} holds no {'/'.join(extensions)} file")
    return store, names


def finish_output(store: Any, partial: str, final: str) -> None:
    """Puts the whole output at its place: a rename where the store has one (local, S3 copy+delete,
    Azure with a hierarchical namespace), else a server-side copy and a delete of the partial."""
    from pyarrow.fs import FileType

    try:
        store.move(partial, final)
    except (OSError, NotImplementedError):
        if store.get_file_info(final).type != FileType.NotFound or store.get_file_info(partial).type != FileType.File:
            raise
        store.copy_file(partial, final)
        store.delete_file(partial)


def remove_quietly(location: str) -> None:
    """Deletes a partial output (local or on a store); a failure here must not mask the run's error."""
    if not is_remote(location):
        if os.path.exists(location):
            os.unlink(location)
        return
    try:
        store, path = open_store(location)
        from pyarrow import fs

        if store.get_file_info(path).type == fs.FileType.File:
            store.delete_file(path)
    except Exception:  # noqa: BLE001 - best effort cleanup
        pass
