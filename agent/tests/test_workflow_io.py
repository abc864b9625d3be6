"""Workflow inputs and outputs on object stores, and the runs' email notifications, for real on
loopback: an S3 server (moto's, PyPI `moto[server]`), Azure Blob (Azurite, npm devDependency
`azurite`), an SMTP server with STARTTLS and AUTH (aiosmtpd), one agent on ports 16600-16659 whose
environment holds the stores' credentials the standard way (AWS_* / AZURE_STORAGE_CONNECTION_STRING)
and whose config names the SMTP server; the scoring processes are the project's venv, as in
test_workflows.py. A missing server binary skips with the reason, and fails under CI=true.

Covers: CSV on S3 to CSV on S3 and a Parquet folder on S3 to JSON lines on S3, abfss:// in and az://
out on Azurite, each equal to mlflow.pyfunc in process with no partial object left; store errors;
400s naming the field for bad URIs and a missing pyarrow client; mails on success and on failure
over STARTTLS with AUTH, "none requested", a bad address 400; a refused password; the mails of an
agent restart; the scorer's environment (store credentials yes, SMTP password no); no secret in the
agent's files, logs or API answers."""

import datetime
import email
import email.policy
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from typing import Any, Dict, Iterator, List

import numpy as np
import pandas as pd
import pytest

from .support import REPO_ROOT, SERVING_PYTHON, Agent, free_port, kill_group
from .test_workflows import COLUMNS, declare, execute, pyfunc_predictions, stop_scorers, wait_done

PORTS = {"agent": range(16600, 16610), "front": (16610, 16629), "backend": (16630, 16659)}
S3_PORTS, AZURITE_PORTS, SMTP_PORTS = range(16660, 16670), range(16670, 16680), range(16680, 16690)
BUCKET, CONTAINER = "wfio-data", "wfio"
AWS_SECRET = "moto-secret-key-5b1e0c2a9d"
# Azurite's well-known development account (documented, not a secret of anyone's).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SMTP_USER, SMTP_PASSWORD, SMTP_PASSWORD_ENV = "notify", "smtp-pass-7f3c9e1b", "WFIO_AGENT_SMTP_PASSWORD"
AZURITE_BIN = os.path.join(REPO_ROOT, "node_modules", ".bin", "azurite-blob")


def unavailable(reason: str) -> None:
    """pytest.skip with the reason; under CI=true nothing real may be skipped, so it fails instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this suite must run)")
    pytest.skip(reason)


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{what} not listening on 127.0.0.1:{port} after {timeout} s")


def stop_server(proc: "subprocess.Popen[bytes]") -> None:
    """SIGTERM, then SIGKILL after 10 s: Azurite's graceful shutdown can outlast a test's teardown."""
    kill_group(proc.pid)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto[server] is not installed in the venv (python/requirements-dev.txt; run scripts/bootstrap.sh)")
    port = free_port(S3_PORTS)
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    proc = subprocess.Popen([SERVING_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        seconds = wait_port(port, proc, "moto S3 server")
        env = {
            "AWS_ACCESS_KEY_ID": "moto-access-key", "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true",
        }  # fmt: skip
        yield {"port": port, "env": env, "start_seconds": seconds}
    finally:
        stop_server(proc)
        log.close()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    if not os.access(AZURITE_BIN, os.X_OK):
        unavailable(f"{AZURITE_BIN} is missing (npm devDependency azurite; run npm ci)")
    port = free_port(AZURITE_PORTS)
    root = tmp_path_factory.mktemp("azurite")
    log = open(root / "azurite.log", "wb")
    proc = subprocess.Popen([AZURITE_BIN, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                             "--skipApiVersionCheck", "--silent"],
                            cwd=str(root), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        seconds = wait_port(port, proc, "azurite-blob")
        connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")  # fmt: skip
        yield {"port": port, "env": {"AZURE_STORAGE_CONNECTION_STRING": connection}, "start_seconds": seconds}
    finally:
        stop_server(proc)
        log.close()


def self_signed(directory: str) -> Dict[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    paths = {"cert": os.path.join(directory, "smtp.crt"), "key": os.path.join(directory, "smtp.key")}
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """aiosmtpd in this process: STARTTLS required before AUTH, AUTH required before MAIL."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        unavailable("aiosmtpd is not installed in the venv (python/requirements-dev.txt; run scripts/bootstrap.sh)")
    tls = self_signed(str(tmp_path_factory.mktemp("smtp")))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls["cert"], tls["key"])
    received: List[Dict[str, Any]] = []
    logins: List[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            received.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "tls": session.ssl is not None,
                             "authenticated": session.authenticated, "subject": str(message["Subject"]),
                             "text": message.get_content()})  # fmt: skip
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        logins.append(f"{mechanism}:{getattr(auth_data, 'login', b'').decode()}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)

    port = free_port(SMTP_PORTS)
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_required=True)  # fmt: skip
    controller.start()
    try:
        yield {"port": port, "ca_file": tls["cert"], "received": received, "logins": logins}
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def io_agent(registry, s3_server, azurite, smtp_server, tmp_path_factory) -> Iterator[Agent]:
    work = tmp_path_factory.mktemp("io-agent")
    smtp = {"host": "127.0.0.1", "port": smtp_server["port"], "from_address": "agent@model-serving.test", "starttls": True,
            "ca_file": smtp_server["ca_file"], "user": SMTP_USER, "password_env": SMTP_PASSWORD_ENV, "timeout_seconds": 20}  # fmt: skip
    agent = Agent(
        str(work), registry["tracking_uri"], port=free_port(PORTS["agent"]),
        front_ports={"first": PORTS["front"][0], "last": PORTS["front"][1]},
        backend_ports={"first": PORTS["backend"][0], "last": PORTS["backend"][1]}, smtp=smtp,
    )  # fmt: skip
    agent.port = agent.config["port"]
    agent.url = f"http://127.0.0.1:{agent.port}"
    agent.extra_env = {**s3_server["env"], **azurite["env"], SMTP_PASSWORD_ENV: SMTP_PASSWORD}
    try:
        agent.start()
        agent.wait_healthy(120)
        yield agent
    finally:
        stop_scorers(agent)
        agent.cleanup()


@pytest.fixture(scope="module")
def stores(s3_server, azurite) -> Dict[str, Any]:
    """This test's own clients of the two stores (the same pyarrow.fs classes, explicit settings)."""
    from pyarrow import fs

    s3 = fs.S3FileSystem(access_key="moto-access-key", secret_key=AWS_SECRET, region="us-east-1",
                         endpoint_override=f"http://127.0.0.1:{s3_server['port']}", allow_bucket_creation=True)  # fmt: skip
    s3.create_dir(BUCKET)
    authority = f"127.0.0.1:{azurite['port']}"
    az = fs.AzureFileSystem(AZURITE_ACCOUNT, account_key=AZURITE_KEY, blob_storage_authority=authority, blob_storage_scheme="http",
                            dfs_storage_authority=authority, dfs_storage_scheme="http")  # fmt: skip
    az.create_dir(CONTAINER)
    return {"s3": s3, "az": az}


@pytest.fixture(scope="module")
def iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return pd.DataFrame(load_iris().data, columns=COLUMNS)


def put(store: Any, path: str, body: bytes) -> None:
    with store.open_output_stream(path) as f:
        f.write(body)


def get(store: Any, path: str) -> bytes:
    with store.open_input_stream(path) as f:
        return f.read()


def listing(store: Any, folder: str) -> List[str]:
    from pyarrow import fs

    return sorted(i.path for i in store.get_file_info(fs.FileSelector(folder, recursive=True, allow_not_found=True)))


def test_csv_on_s3_scored_to_s3_gives_the_predictions_of_pyfunc(io_agent, stores, iris, registry):
    s3 = stores["s3"]
    put(s3, f"{BUCKET}/in/iris.csv", iris.to_csv(index=False).encode())
    out = f"s3://{BUCKET}/out/iris-scored.csv"
    declare(io_agent, "s3-batch", model_uri=registry["v1"], input=f"s3://{BUCKET}/in/iris.csv", output=out, batch_size=32)
    run = wait_done(io_agent, execute(io_agent, "s3-batch"))
    assert run["status"] == "succeeded", run
    assert (run["rows_in"], run["rows_out"], run["batches"], run["output"]) == (150, 150, 5, out)
    import io

    scored = pd.read_csv(io.BytesIO(get(s3, f"{BUCKET}/out/iris-scored.csv")))
    assert list(scored.columns) == COLUMNS + ["prediction"]
    expected = pyfunc_predictions(registry["tracking_uri"], registry["v1"], iris)
    assert scored["prediction"].tolist() == expected.tolist()
    np.testing.assert_allclose(scored[COLUMNS].to_numpy(), iris.to_numpy())
    assert listing(s3, f"{BUCKET}/out") == [f"{BUCKET}/out/iris-scored.csv"], "no .partial object left"

    # A folder of Parquet parts on S3 to JSON lines on S3, by programParameters.
    import pyarrow as pa
    import pyarrow.parquet as pq

    for i, part in enumerate((iris.iloc[:75], iris.iloc[75:])):
        with s3.open_output_stream(f"{BUCKET}/parts/part-{i}.parquet") as f:
            pq.write_table(pa.Table.from_pandas(part, preserve_index=False), f)
    put(s3, f"{BUCKET}/parts/README.txt", b"not an input\n")
    jsonl = f"s3://{BUCKET}/out/from-parts.jsonl"
    run = wait_done(io_agent, execute(io_agent, "s3-batch", f"--input s3://{BUCKET}/parts --input-format parquet --output {jsonl} --output-format jsonl"))
    assert run["status"] == "succeeded", run
    assert (run["rows_in"], run["batches"]) == (150, 6)
    scored = pd.read_json(io.BytesIO(get(s3, f"{BUCKET}/out/from-parts.jsonl")), lines=True)
    assert scored["prediction"].tolist() == expected.tolist()


def test_abfss_in_and_az_out_on_azurite_give_the_predictions_of_pyfunc(io_agent, stores, iris, registry):
    az = stores["az"]
    put(az, f"{CONTAINER}/in/iris.csv", iris.to_csv(index=False).encode())
    abfss = f"abfss://{CONTAINER}@{AZURITE_ACCOUNT}.dfs.core.windows.net"
    declare(io_agent, "az-batch", model_uri=registry["v1"], input=f"{abfss}/in/iris.csv", output=f"az://{CONTAINER}/out/iris.parquet",
            output_format="parquet", batch_size=32)  # fmt: skip
    run = wait_done(io_agent, execute(io_agent, "az-batch"))
    assert run["status"] == "succeeded", run
    assert (run["rows_in"], run["rows_out"], run["batches"]) == (150, 150, 5)
    import io

    scored = pd.read_parquet(io.BytesIO(get(az, f"{CONTAINER}/out/iris.parquet")))
    expected = pyfunc_predictions(registry["tracking_uri"], registry["v1"], iris)
    assert scored["prediction"].tolist() == expected.tolist()
    # Azurite has no hierarchical namespace: no rename, so the output is a server-side copy of the partial.
    assert listing(az, f"{CONTAINER}/out") == [f"{CONTAINER}/out/iris.parquet"], "no .partial blob left"


def test_store_errors_fail_the_run_with_the_cause_and_leave_nothing(io_agent, stores, registry):
    run = wait_done(io_agent, execute(io_agent, "s3-batch", f"--input s3://{BUCKET}/in/missing.csv"))
    assert run["status"] == "failed" and f"input s3://{BUCKET}/in/missing.csv does not exist on the store" in run["error"], run
    run = wait_done(io_agent, execute(io_agent, "s3-batch", "--output s3://no-such-bucket-wfio/out.csv"))
    assert run["status"] == "failed" and "no-such-bucket-wfio" in run["error"], run
    assert not [p for p in listing(stores["s3"], BUCKET) if p.endswith(".partial")]
    for location, message in (
        ("gs://b/in.csv", "request body input: Value error, scheme gs:// is not supported; use an absolute path on the agent's host or s3://, abfss://, abfs://, az://"),
        ("s3://Bad_Bucket/in.csv", "request body input: Value error, s3:// location must be s3://<bucket>/<key> with a valid bucket name"),
        ("s3://bucket", "request body input: Value error, s3:// location needs a path inside the bucket or container"),
        ("abfss://c@x.dfs.core.windows.net/in.csv", "request body input: Value error, abfss:// location must be abfss://<container>@<account>.dfs.core.windows.net/<path>"),
        ("az://data/a/../b.csv", "request body input: Value error, az:// location needs a path inside the bucket or container, without empty, . or .. parts"),
    ):  # fmt: skip
        response = io_agent.call("PUT", "/api/v1/workflows/bad-store", json={"model_uri": registry["v1"], "input": location, "output": "/tmp/o.csv"})
        assert response.status_code == 400 and message in response.json()["error"], (location, response.text)


def test_a_missing_client_is_a_clear_error_naming_the_field(monkeypatch):
    import importlib

    from model_serving_agent.workflows import spec, stores

    real = importlib.import_module

    def without_azure(name: str, *args: Any) -> Any:
        if name == "pyarrow._azurefs":
            raise ImportError("No module named 'pyarrow._azurefs'")
        return real(name, *args)

    stores.client_missing.cache_clear()
    monkeypatch.setattr(importlib, "import_module", without_azure)
    try:
        with pytest.raises(spec.SpecError) as err:
            spec.parse_body(spec.WorkflowSpec, {"model_uri": "models:/iris/1", "input": "/d/in.csv", "output": "az://c1/out.csv"}, "request body")
        assert str(err.value).startswith(
            "request body output: Value error, az:// needs pyarrow.fs.AzureFileSystem, which this host's pyarrow lacks (No module named 'pyarrow._azurefs')"
        )
        assert spec.check_location("s3://bkt/in.csv") == "s3://bkt/in.csv"
    finally:
        stores.client_missing.cache_clear()


def wait_notified(agent: Agent, execution_id: str, timeout: float = 60) -> Dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = agent.call("GET", f"/api/v1/workflow/executions/{execution_id}").json()
        if body["status"] in ("succeeded", "failed") and body["notifications"]["status"] != "pending":
            return body
        time.sleep(0.3)
    raise TimeoutError(f"execution {execution_id} not notified after {timeout} s: {body}")


def scorer_environ(agent: Agent, execution_id: str) -> Dict[str, str]:
    """/proc/<pid>/environ of the run's scoring process, read while it loads its model (seconds)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = agent.call("GET", f"/api/v1/workflow/executions/{execution_id}").json()
        assert body["status"] in ("queued", "running"), f"the run ended before its scorer was seen: {body}"
        if body["pid"]:
            with open(f"/proc/{body['pid']}/environ", "rb") as f:
                return dict(e.split("=", 1) for e in f.read().decode().split("\0") if "=" in e)
        time.sleep(0.05)
    raise TimeoutError(f"no scoring process for {execution_id}")


def test_email_on_success_and_on_failure_reach_the_smtp_server_over_starttls(io_agent, smtp_server, stores, iris, registry):
    put(stores["s3"], f"{BUCKET}/in/iris.csv", iris.to_csv(index=False).encode())
    received = smtp_server["received"]
    body = {"workflowId": "s3-batch", "emailOnSuccess": "ops@example.test, lead@example.test", "emailOnFailure": ["oncall@example.test"],
            "sparkConfig": {"spark.executor.memory": "2g"}, "libJars": "dbfs:/jars/a.jar"}  # fmt: skip
    response = io_agent.call("POST", "/api/v1/workflow/execute", json=body)
    assert response.status_code == 202, response.text
    environ = scorer_environ(io_agent, response.json()["executionId"])
    run = wait_notified(io_agent, response.json()["executionId"])
    assert run["status"] == "succeeded", run
    # The scorer has the store credentials of the agent's environment, not its SMTP password (password_env).
    assert environ["AWS_SECRET_ACCESS_KEY"] == AWS_SECRET and "AZURE_STORAGE_CONNECTION_STRING" in environ
    assert SMTP_PASSWORD_ENV not in environ and SMTP_PASSWORD not in json.dumps(environ)
    assert run["notifications"]["status"] == "sent", run["notifications"]
    assert run["notifications"]["on_success"] == ["ops@example.test", "lead@example.test"]
    assert set(run["ignored"]) == {"sparkConfig", "libJars"} and "no Spark runtime" in run["ignored"]["sparkConfig"]
    mail = [m for m in received if run["id"] in m["text"]]
    assert len(mail) == 1, received
    assert mail[0]["to"] == ["ops@example.test", "lead@example.test"] and mail[0]["from"] == "agent@model-serving.test"
    assert mail[0]["tls"] and mail[0]["authenticated"] and f"PLAIN:{SMTP_USER}:ok" in smtp_server["logins"]
    assert mail[0]["subject"] == f"[model-serving] workflow s3-batch succeeded (execution {run['id']})"
    assert "rows:      150 in, 150 out, 5 batches" in mail[0]["text"]

    failing = {"workflowId": "s3-batch", "programParameters": f"--input s3://{BUCKET}/in/gone.csv",
               "emailOnSuccess": "ops@example.test", "emailOnFailure": "oncall@example.test"}  # fmt: skip
    run = wait_notified(io_agent, io_agent.call("POST", "/api/v1/workflow/execute", json=failing).json()["executionId"])
    assert run["status"] == "failed" and run["notifications"]["status"] == "sent", run
    mail = [m for m in received if run["id"] in m["text"]]
    assert len(mail) == 1 and mail[0]["to"] == ["oncall@example.test"]
    assert "error: ValueError: input s3://wfio-data/in/gone.csv does not exist on the store" in mail[0]["text"]

    only_success = {**failing, "emailOnFailure": None}
    run = wait_notified(io_agent, io_agent.call("POST", "/api/v1/workflow/execute", json=only_success).json()["executionId"])
    assert run["status"] == "failed" and run["notifications"] == {
        "on_success": ["ops@example.test"], "on_failure": [], "status": "none requested", "detail": "no address for a failed run"}, run
    assert not [m for m in received if run["id"] in m["text"]]

    bad = io_agent.call("POST", "/api/v1/workflow/execute", json={"workflowId": "s3-batch", "emailOnSuccess": "ops@example.test\r\nBcc: x@y.z"})
    assert bad.status_code == 400 and "request body emailOnSuccess: Value error, 'ops@example.test\\r\\nBcc: x@y.z' is not an email address" in bad.json()["error"]


def test_no_credential_or_password_in_the_state_the_records_or_the_logs(io_agent):
    state_dir = os.path.dirname(io_agent.config["state_file"])
    texts = []
    for root in (state_dir, io_agent.config["log_dir"]):
        for folder, _, names in os.walk(root):
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    texts.append((os.path.join(folder, name), f.read().decode(errors="replace")))
    with open(os.path.join(io_agent.work_dir, "agent.stderr"), "rb") as f:
        texts.append(("agent.stderr", f.read().decode(errors="replace")))
    assert any(name.endswith("workflows.json") for name, _ in texts)
    for secret in (AWS_SECRET, AZURITE_KEY, SMTP_PASSWORD):
        assert not [name for name, text in texts if secret in text], f"a secret is in {secret[:4]}..."
    listed = json.dumps(io_agent.call("GET", "/api/v1/workflow/executions").json())
    assert AWS_SECRET not in listed and AZURITE_KEY not in listed and SMTP_PASSWORD not in listed


def test_smtp_send_refused_password_password_env_and_password_file(smtp_server, monkeypatch, tmp_path):
    """mail.send in process against the same server: a wrong password is an error that carries the
    server's reply and not the password; password_env reads the environment, password_file a file."""
    from model_serving_agent.workflows.mail import SmtpConfig, send
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "agent@model-serving.test", "ops@example.test", "env check"
    message.set_content("hello\n")
    base = {"host": "127.0.0.1", "port": smtp_server["port"], "from_address": "agent@model-serving.test", "ca_file": smtp_server["ca_file"], "user": SMTP_USER}
    monkeypatch.setenv("WFIO_SMTP_PASSWORD", "wrong-password-123")
    with pytest.raises(Exception) as err:
        send(SmtpConfig(**base, password_env="WFIO_SMTP_PASSWORD"), message)
    assert "535" in str(err.value) and "wrong-password-123" not in str(err.value)
    monkeypatch.setenv("WFIO_SMTP_PASSWORD", SMTP_PASSWORD)
    before = len(smtp_server["received"])
    send(SmtpConfig(**base, password_env="WFIO_SMTP_PASSWORD"), message)
    assert len(smtp_server["received"]) == before + 1 and smtp_server["received"][-1]["subject"] == "env check"
    monkeypatch.delenv("WFIO_SMTP_PASSWORD")
    with pytest.raises(RuntimeError, match="smtp password_env WFIO_SMTP_PASSWORD is not set in the agent's environment"):
        send(SmtpConfig(**base, password_env="WFIO_SMTP_PASSWORD"), message)
    password_file = tmp_path / "smtp-password"
    password_file.write_text(SMTP_PASSWORD + "\n")
    send(SmtpConfig(**base, password_file=str(password_file)), message)
    assert len(smtp_server["received"]) == before + 2
    with pytest.raises(RuntimeError, match=f"smtp password_file {tmp_path}/nope: No such file or directory"):
        send(SmtpConfig(**base, password_file=str(tmp_path / "nope")), message)
    with pytest.raises(ssl.SSLError):  # the server's certificate is checked against ca_file (here: the system store)
        send(SmtpConfig(**{**base, "ca_file": None}, password_file=str(password_file)), message)


def test_an_agent_restart_mails_the_interrupted_run_and_the_notification_it_had_not_sent(smtp_server, tmp_path):
    """WorkflowService.start in process on a stored workflows.json: a run left running fails as
    interrupted and mails its emailOnFailure; a finished run whose mail was still pending is sent."""
    import asyncio

    from model_serving_agent.config import parse_config
    from model_serving_agent.workflows.service import WorkflowService

    password_file = tmp_path / "smtp-password"
    password_file.write_text(SMTP_PASSWORD + "\n")
    smtp = {"host": "127.0.0.1", "port": smtp_server["port"], "from_address": "agent@model-serving.test",
            "ca_file": smtp_server["ca_file"], "user": SMTP_USER, "password_file": str(password_file)}  # fmt: skip
    config = parse_config({"port": 16689, "state_file": str(tmp_path / "state.json"), "log_dir": str(tmp_path / "logs"), "smtp": smtp})

    def stored(execution_id: str, status: str, on_success: List[str], on_failure: List[str]) -> Dict[str, Any]:
        return {"id": execution_id, "workflow_id": "restart", "status": status, "submitted_at": "2026-12-01T10:00:00Z",
                "started_at": None, "finished_at": None, "duration_seconds": None, "model_uri": "models:/iris/1",
                "input": "/d/in.csv", "input_format": "csv", "output": str(tmp_path / "out.csv"), "output_format": "csv",
                "batch_size": 32, "rows_in": 0, "rows_out": 0, "batches": 0, "error": None, "peak_rss_bytes": None, "pid": None,
                "run_dir": str(tmp_path / "logs" / execution_id), "request": {},
                "notifications": {"on_success": on_success, "on_failure": on_failure, "status": "pending", "detail": None}}  # fmt: skip

    executions = {"r-running": stored("r-running", "running", [], ["oncall@example.test"]),
                  "r-done": stored("r-done", "succeeded", ["ops@example.test"], [])}  # fmt: skip
    (tmp_path / "workflows.json").write_text(json.dumps({"version": 1, "workflows": {}, "executions": executions}))
    before = len(smtp_server["received"])

    async def restart() -> WorkflowService:
        service = WorkflowService(config)
        await service.start()
        await service.shutdown()  # waits for the notifications
        return service

    service = asyncio.run(restart())
    running, done = service.executions["r-running"], service.executions["r-done"]
    assert running["status"] == "failed" and running["error"] == "interrupted: the agent stopped while this run was running"
    assert running["notifications"]["status"] == "sent" and done["notifications"]["status"] == "sent", service.executions
    mails = {m["subject"]: m["to"] for m in smtp_server["received"][before:]}
    assert mails == {
        "[model-serving] workflow restart failed (execution r-running)": ["oncall@example.test"],
        "[model-serving] workflow restart succeeded (execution r-done)": ["ops@example.test"],
    }
    with open(tmp_path / "workflows.json", encoding="utf-8") as f:
        saved = f.read()
    assert '"status": "sent"' in saved and SMTP_PASSWORD not in saved
