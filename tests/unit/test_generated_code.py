"""The committed guard/v1 code is what protos/ generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generated_protobuf_code_is_current(tmp_path):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "protos"), f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(REPO / "protos/guard/v1/guard.proto")],
                   check=True)
    for name in ("guard_pb2.py", "guard_pb2.pyi", "guard_pb2_grpc.py"):
        fresh = (tmp_path / "guard/v1" / name).read_text()
        committed = (REPO / "guard/v1" / name).read_text()
        assert fresh == committed, f"guard/v1/{name} is stale: run ./dev proto"
