"""The programs the arena runs, as their command lines say."""

from arena import processes


def test_the_web_server_runs_on_asyncios_loop_which_accepts_every_waiting_connection_at_once():
    """uvloop (libuv) accepts one connection per loop iteration: under load, a surge of visitors waited in
    the kernel's queue until their sockets timed out (bench/load.py, 500 at once). The web program must
    not pick it, whether it binds its port or serves supervisord's socket."""
    for program in (processes.web_program(port=8123), processes.web_program(processes=2)):
        loop = program.argv[program.argv.index("--loop") + 1]
        assert loop == "asyncio"
