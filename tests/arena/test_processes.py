"""The programs the arena runs, as their command lines say."""

from arena import processes


def test_the_web_server_runs_on_asyncios_loop_which_accepts_every_waiting_connection_at_once():
    """uvloop (libuv) accepts one connection per loop iteration: under load, a surge of visitors waited in
    the kernel's queue until their sockets timed out (bench/load.py, 500 at once). The web program must
    not pick it, whether it binds its port or serves supervisord's socket."""
    for program in (processes.web_program(port=8123), processes.web_program(processes=2)):
        loop = program.argv[program.argv.index("--loop") + 1]
        assert loop == "asyncio"


def test_forwarded_for_headers_are_believed_only_from_the_proxies_named(monkeypatch, settings, tmp_path):
    """PROXY_HEADERS=1 trusts the addresses in FORWARDED_ALLOW_IPS, never every sender ("*")."""
    from arena.supervisor import arena_programs

    monkeypatch.setattr("arena.supervisor.model_programs", lambda **_: [])  # no model servers: the web program's line
    for proxies, expected in ((["127.0.0.1", "::1"], "127.0.0.1,::1"), (["10.0.0.0/8"], "10.0.0.0/8")):
        settings.PROXY_HEADERS, settings.FORWARDED_ALLOW_IPS = True, proxies
        [web] = [p for p in arena_programs(var_dir=tmp_path, env={"REDIS_URL": "redis://x"}, web_processes=1, port=8000)
                 if p.name == "web"]  # fmt: skip
        assert web.argv[web.argv.index("--forwarded-allow-ips") + 1] == expected
    settings.PROXY_HEADERS = False
    [web] = [p for p in arena_programs(var_dir=tmp_path, env={"REDIS_URL": "redis://x"}, web_processes=1, port=8000)
             if p.name == "web"]  # fmt: skip
    assert "--no-proxy-headers" in web.argv and "--forwarded-allow-ips" not in web.argv
