"""TLS and mutual TLS as settings, with certificates made by openssl for the test."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from guard.transport.client import ClientTls, connect
from guard.v1 import guard_pb2 as pb
from guard.v1 import guard_pb2_grpc as pb_grpc
from tests.helpers import QUIET_HOURS_OFF, policy_file


def test_mutual_tls_admits_only_clients_with_a_certificate_of_the_ca(serve_factory, tmp_path, pki):
    server = serve_factory({"GUARD_TLS_CERT": str(pki / "server.pem"), "GUARD_TLS_KEY": str(pki / "server.key"),
                            "GUARD_TLS_CLIENT_CA": str(pki / "ca.pem"), "GUARD_REFLECTION": "false",
                            "GUARD_POLICY": str(policy_file(tmp_path, quiet_hours=QUIET_HOURS_OFF))})
    ca, cert, key = ((pki / n).read_bytes() for n in ("ca.pem", "client.pem", "client.key"))
    server.credentials = grpc.ssl_channel_credentials(ca, key, cert)
    server.start()
    assert server.events("serving")[0]["mutual_tls"] is True
    touch = pb.CheckTouchRequest(user_id="u1", channel="push", category="content", touch_id="t1")
    with connect(server.target, server.key, ClientTls(ca, cert, key)) as channel:
        assert pb_grpc.EngagementGuardStub(channel).CheckTouch(touch, timeout=10).decision == pb.ALLOW
        with pytest.raises(grpc.RpcError) as err:  # reflection switched off
            next(iter(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)))
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    for refused in (connect(server.target, server.key, ClientTls(ca)), connect(server.target, server.key)):
        with refused as channel, pytest.raises(grpc.RpcError) as err:
            pb_grpc.EngagementGuardStub(channel).CheckTouch(touch, timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    cli = server.cli("check", "u1", "push", "content")
    assert cli.returncode == 1 and "UNAVAILABLE" in cli.stderr
    env = {**server.cli_env, "GUARD_SERVER_CA": str(pki / "ca.pem"), "GUARD_CLIENT_CERT": str(pki / "client.pem"),
           "GUARD_CLIENT_KEY": str(pki / "client.key")}
    cli = subprocess.run([sys.executable, "-m", "guard", "check", "u1", "push", "content", "--json", "--server",
                          server.target],
                         env=env, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and '"decision": "ALLOW"' in cli.stdout
    assert server.stop() == 0


def test_half_a_tls_configuration_is_refused_naming_what_is_missing(tmp_path, pki):
    out = subprocess.run([sys.executable, "-m", "guard", "serve", "--data-dir", str(tmp_path / "d")],
                         env={"GUARD_TLS_CERT": str(pki / "server.pem"), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "GUARD_TLS_KEY" in out.stderr
