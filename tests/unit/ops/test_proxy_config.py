"""``sas proxy``'s HAProxy configuration: every replica health-checked on /readyz, a failed connection
retried on another replica; HAProxy itself accepts it (``haproxy -c``, installed by ``make proxy``)."""

from __future__ import annotations

import subprocess

import pytest

from sas_cli.proxy import HAPROXY, haproxy_config


def test_every_backend_is_checked_and_failed_connections_go_elsewhere():
    config = haproxy_config(listen_host="127.0.0.1", listen_port=8000, backends=["127.0.0.1:8001", "10.0.0.2:8000"],
                            check_ms=300)
    assert "bind 127.0.0.1:8000" in config
    assert "server api1 127.0.0.1:8001 check inter 300ms fall 2 rise 2" in config
    assert "server api2 10.0.0.2:8000 check inter 300ms fall 2 rise 2" in config
    assert "option httpchk GET /readyz" in config and "http-check expect status 200" in config
    # A slow check is not a dead replica: its time is not the interval's.
    assert "timeout check 3000ms" in config
    assert "retry-on conn-failure empty-response" in config and "option redispatch" in config
    with pytest.raises(ValueError):
        haproxy_config(listen_host="127.0.0.1", listen_port=8000, backends=[])


def test_haproxy_accepts_the_configuration(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_config(listen_host="127.0.0.1", listen_port=8000, backends=["127.0.0.1:8001"]))
    checked = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
