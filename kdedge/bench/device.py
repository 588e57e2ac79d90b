"""Reports from `kdedge-device-bench` (measured on the target device with the runtime alone) as rows of a host
`kdedge bench` report: keyed by device (backend `device:<name>`), comparable with the host's rows because they
must come from the same bundles (model sha256) and the same data (file sha256 and row count); retention and
speed-ups are then computed with the host's rows (report.build_rows)."""

from __future__ import annotations

from pathlib import Path

from kdedge.errors import KdedgeError
from kdedge.outputs import sha256_file
from kdedge_runtime.bench import ReportError, load_report
from kdedge_runtime.data import shown


def device_rows(paths: tuple[str, ...], models: list[dict], data_file: str, rows: int) -> list[dict]:
    """Rows for every bundle of every device report; `models` are the host's (name, role, precision, size_mb,
    parameters, weights_sha256)."""
    if not paths:
        return []
    if not data_file or not Path(data_file).is_file():
        raise KdedgeError("--device-report needs dev data read from a file (a local GLUE folder or --dev-file), so "
                          "that the device can be shown to have scored the same rows")
    data_sha256 = sha256_file(Path(data_file))
    by_sha = {m["weights_sha256"]: m for m in models if m["kind"] == "onnx"}
    out, seen = [], set()
    for path in paths:
        try:
            report = load_report(path)
        except ReportError as e:
            raise KdedgeError(f"--device-report {e}") from None
        data = report["data"]
        if (data["sha256"], data["rows"]) != (data_sha256, rows):
            raise KdedgeError(f"--device-report {path} scored other data ({shown(data['file'])}, {data['rows']} rows, "
                              f"sha256 {shown(data['sha256'][:12])}…) than this bench ({Path(data_file).name}, "
                              f"{rows} rows, sha256 {data_sha256[:12]}…): run the device bench on the same file "
                              "(--max-examples for --max-eval-samples)")
        # load_report checked these are strings (or null); a name is shown on one line
        device = f"device:{shown(report['device'].get('name') or report['device']['cpu'].get('model') or 'unknown')}"
        if device in seen:
            raise KdedgeError(f"--device-report {path}: a second report from {device}; give each device once")
        seen.add(device)
        for row in report["bundles"]:
            model = by_sha.get(row["model_sha256"])
            if model is None:
                raise KdedgeError(f"--device-report {path}: bundle {shown(row['name'])} (model sha256 "
                                  f"{shown(row['model_sha256'][:12])}…) is not among this bench's bundles; give the "
                                  "same bundle with --bundle")
            out.append(_row(row, model, device, report))
    return out


def _row(row: dict, model: dict, device: str, report: dict) -> dict:
    latency = row["latency"]
    smallest, largest = min(latency, key=int), max(latency, key=int)
    return {"model": model["name"], "role": model["role"], "format": "onnx", "backend": device,
            "precision": model["precision"], "size_mb": round(model["size_mb"], 2), "parameters": model["parameters"],
            "status": "ok", "why": None, "device": report["device"],
            "session": {"threads": report["settings"].get("threads"), "measured_on": "the device itself"},
            "latency": {"real": latency}, "batch": int(smallest), "p50_ms": latency[smallest]["p50_ms"],
            "p99_ms": latency[smallest]["p99_ms"], "throughput_batch": int(largest),
            "throughput": latency[largest]["throughput"], "metrics": row["metrics"],
            "metric": row["metrics"][row["main_metric"]], "load_ms": row.get("load_ms"),
            "peak_rss_mb": row.get("peak_rss_mb")}
