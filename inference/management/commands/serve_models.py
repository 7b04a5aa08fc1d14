"""`manage.py serve_models`: run the locally hosted model servers (vLLM or llama.cpp), each supervised on
its own, until Ctrl-C. `make run` supervises them together with the rest of the arena."""

import shlex

from django.core.management.base import BaseCommand, CommandError

from arena import supervisor
from arena.processes import port_is_free
from inference import launch


class Command(BaseCommand):
    help = "Start `vllm serve` / the llama.cpp server for every locally hosted model endpoint, supervised."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print the commands only.")

    def handle(self, *args, dry_run, **options):
        servers = launch.model_servers()
        for server in servers:
            if server.skip_reason:
                self.stderr.write(f"not starting {server.label}: {server.skip_reason}")
        if dry_run:
            for server in servers:
                if server.program is not None:
                    prefix = "# skipped: " if server.skip_reason else ""
                    variables = [f"{key}={shlex.quote(value)}" for key, value in server.program.env.items()]
                    self.stdout.write(prefix + " ".join([*variables, *map(shlex.quote, server.program.argv)]))
            return
        runnable = [server for server in servers if not server.skip_reason]
        busy = [server for server in runnable if not port_is_free(server.port)]
        if busy:
            raise CommandError(
                "already in use: "
                + ", ".join(server.base_url for server in busy)
                + " (another arena running?); stop it, or change the endpoint's port in the admin"
            )
        if not runnable:
            self.stdout.write("no locally hosted endpoint can run here; nothing to serve")
            return
        code = supervisor.run(models_only=True)
        if code:
            raise CommandError(f"supervisord exited with code {code}")
