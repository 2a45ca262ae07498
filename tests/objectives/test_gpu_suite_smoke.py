"""bench/gpu_suite.py in smoke mode on the CPU: every part's code path runs, CUDA-only figures say so."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Every part but the second throughput batch size (the same code path) and pytest (nothing to run on a CPU), in
# two runs of the suite that parallel test processes take apart (each part starts its own processes).
CHECKS = {
    "compile,throughput-128": lambda m: (
        m["second trial's extra seconds (target: none)"]["unit"] == "s"
        and m["epoch img/s, batch 16, compiled"]["value"] > 0
        and m["epoch img/s, batch 16, cudagraphs"]["note"] == "n/a (needs CUDA)"
        and m["DataLoader+PIL epoch img/s, batch 16, eager step"]["value"] > 0),
    "packing,fused": lambda m: (
        m["trials/hour, K=2 on one device (data 0.2, 8 epochs)"]["value"] > 0
        and m["trials/hour, fused K=2 (width 4, data 0.3, 2 epochs)"]["value"] > 0
        and "x K=1 separate" in m["trials/hour, fused K=2 (width 4, data 0.3, 2 epochs)"]["note"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("parts", list(CHECKS))
def test_the_gpu_suite_runs_end_to_end_in_smoke_mode(parts: str, tmp_path: Path, cifar_dir: Path) -> None:
    out = tmp_path / "suite.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_suite.py"), "--smoke", "--only", parts,
                           "--data-dir", str(cifar_dir), "--out", str(out)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {name: p["status"] for name, p in result["parts"].items()} == dict.fromkeys(parts.split(","), "ok")
    measures = {r["measure"]: r for r in result["rows"]}
    assert CHECKS[parts](measures), result["rows"]
    assert "img/s" in proc.stdout or "trials/hour" in proc.stdout  # the table is printed as rows come in
    assert not any(r["note"] and "FAILED" in r["note"] for r in result["rows"])
