"""``guard tasks watch`` waits out a server restart instead of exiting."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading

from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, policy_file


def _complain(server, user: str) -> str:
    with server.channel() as channel:
        stub = pb_grpc.EngagementGuardStub(channel)
        return stub.RecordReply(pb.RecordReplyRequest(user_id=user, channel="sms", text="垃圾短信，再发就投诉",
                                                      reply_id=f"r-{user}"), timeout=30).task_id


def test_watch_reconnects_when_the_server_restarts(serve_factory, tmp_path):
    server = serve_factory({"GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))})
    server.start()
    cli = subprocess.Popen([sys.executable, "-m", "guard", "tasks", "watch", "--consumer", "amy", "--server", server.target],
                           env={**os.environ, "GUARD_API_KEY": server.key},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert cli.stdout is not None
    stdout = cli.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = _complain(server, "u1")
        assert json.loads(lines.get(timeout=20))["task_id"] == first
        assert server.stop() == 0
        server.start()
        second = _complain(server, "u2")
        assert json.loads(lines.get(timeout=30))["task_id"] == second
        assert cli.poll() is None
    finally:
        cli.kill()
        _, err = cli.communicate(timeout=10)
        server.kill()
    assert "watching again" in err
