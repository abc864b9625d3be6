"""The scoring process of one run: python -m model_serving_agent.workflows.score <run_dir>

Reads <run_dir>/job.json (the run's resolved workflow), loads the model once with mlflow.pyfunc,
streams the input in batches of batch_size rows (pandas chunked CSV/JSON-lines readers, pyarrow
Parquet record batches), appends each scored batch to <output>.<execution>.partial and renames it to <output>
at the end, so memory holds one batch whatever the file size. Input and output may be on an object
store (stores.py: s3://, abfss://, az://); they stream through pyarrow.fs the same way. <run_dir>/progress.json is replaced
after batches (at most every second); <run_dir>/result.json says how it ended, with the peak RSS.
The agent owns this process: it runs in its own session and the agent kills it if the run is stopped
or found orphaned after an agent restart."""

import json
import os
import sys
import time
import traceback
from typing import Any, Dict, Iterator, List, Tuple

from .stores import finish_output, is_remote, open_store, remove_quietly

SCORE_MODULE = "model_serving_agent.workflows.score"


def write_json(path: str, body: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f)
    os.replace(tmp, path)


def peak_rss_bytes() -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def input_files(location: str, fmt: str) -> Tuple[Any, List[str]]:
    """(store, paths): the store is None for the agent's host, whose files pandas opens by path."""
    from .spec import EXTENSIONS
    from .stores import input_paths, is_remote

    if is_remote(location):
        return input_paths(location, EXTENSIONS[fmt])
    if os.path.isdir(location):
        names = sorted(n for n in os.listdir(location) if n.lower().endswith(EXTENSIONS[fmt]))
        if not names:
            raise ValueError(f"input folder {location} holds no {'/'.join(EXTENSIONS[fmt])} file")
        return None, [os.path.join(location, n) for n in names]
    if not os.path.isfile(location):
        raise ValueError(f"input {location} does not exist on the agent's host")
    return None, [location]


def batches(store: Any, files: List[str], fmt: str, batch_size: int) -> Iterator[Any]:
    import contextlib

    import pandas as pd

    for path in files:
        with contextlib.ExitStack() as stack:
            if fmt == "parquet":
                import pyarrow.parquet as pq

                source = path if store is None else stack.enter_context(store.open_input_file(path))
                parquet = stack.enter_context(pq.ParquetFile(source))
                for record_batch in parquet.iter_batches(batch_size=batch_size):
                    yield record_batch.to_pandas()
                continue
            source = path if store is None else stack.enter_context(store.open_input_stream(path))
            if fmt == "csv":
                reader = stack.enter_context(pd.read_csv(source, chunksize=batch_size))
            else:
                reader = stack.enter_context(pd.read_json(source, lines=True, chunksize=batch_size))
            yield from reader


def with_predictions(frame: Any, predictions: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        out = predictions.reset_index(drop=True)
        out.columns = [f"prediction_{c}" if c in frame.columns else str(c) for c in out.columns]
        return pd.concat([frame.reset_index(drop=True), out], axis=1)
    values = np.asarray(predictions)
    frame = frame.reset_index(drop=True)
    if values.ndim == 2 and values.shape[1] > 1:
        for i in range(values.shape[1]):
            frame[f"prediction_{i}"] = values[:, i]
    else:
        frame["prediction"] = values.reshape(len(frame))
    return frame


class Writer:
    """Appends scored batches to one file: on the agent's host, or a store's output stream (`store`)."""

    def __init__(self, path: str, fmt: str, store: Any = None):
        self.path, self.fmt, self.store = path, fmt, store
        self.file = open(path, "wb") if store is None else store.open_output_stream(path)
        self.parquet: Any = None
        self.first = True

    def write(self, frame: Any) -> None:
        if self.fmt == "csv" and self.store is not None:
            self.file.write(frame.to_csv(header=self.first, index=False).encode())
        elif self.fmt == "csv":
            frame.to_csv(self.file, header=self.first, index=False)
        elif self.fmt == "jsonl":
            text = frame.to_json(orient="records", lines=True) if len(frame) else ""
            if text and not text.endswith("\n"):
                text += "\n"
            self.file.write(text.encode())
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.file, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        self.first = False

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.store is None:
            self.file.flush()
            os.fsync(self.file.fileno())
        self.file.close()  # a store's stream uploads its last part here


def run(run_dir: str) -> int:
    with open(os.path.join(run_dir, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    started = time.monotonic()
    progress: Dict[str, Any] = {"rows_in": 0, "rows_out": 0, "batches": 0}
    partial = job["partial"]
    try:
        source, files = input_files(job["input"], job["input_format"])
        output_store = None
        if is_remote(job["output"]):
            output_store, final = open_store(job["output"])
            partial_path = open_store(partial)[1]
        else:
            os.makedirs(os.path.dirname(job["output"]) or "/", exist_ok=True)
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(job["model_uri"])
        progress["model_loaded_seconds"] = round(time.monotonic() - started, 3)
        write_json(os.path.join(run_dir, "progress.json"), progress)
        writer = Writer(partial if output_store is None else partial_path, job["output_format"], output_store)
        last_report = time.monotonic()
        try:
            for frame in batches(source, files, job["input_format"], job["batch_size"]):
                progress["rows_in"] += len(frame)
                scored = with_predictions(frame, model.predict(frame))
                writer.write(scored)
                progress["rows_out"] += len(scored)
                progress["batches"] += 1
                if time.monotonic() - last_report >= 1.0:
                    write_json(os.path.join(run_dir, "progress.json"), progress)
                    last_report = time.monotonic()
        finally:
            writer.close()
        if output_store is None:
            os.replace(partial, job["output"])
        else:
            finish_output(output_store, partial_path, final)
        result = {**progress, "status": "succeeded", "error": None}
    except BaseException as err:  # noqa: BLE001 - every failure is reported in the run's record
        remove_quietly(partial)
        lines = traceback.format_exception_only(type(err), err)
        result = {**progress, "status": "failed", "error": lines[-1].strip()}
        traceback.print_exc()
    result["scoring_seconds"] = round(time.monotonic() - started, 3)
    result["peak_rss_bytes"] = peak_rss_bytes()
    write_json(os.path.join(run_dir, "result.json"), result)
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
