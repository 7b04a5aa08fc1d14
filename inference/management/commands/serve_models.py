"""`manage.py serve_models`: run the locally hosted model servers (vLLM or llama.cpp) until Ctrl-C."""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference import launch


class Command(BaseCommand):
    help = "Start `vllm serve` / the llama.cpp server for every locally hosted model endpoint."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print the commands only.")
        parser.add_argument("--ready-timeout", type=float, default=600.0)

    def handle(self, *args, dry_run, ready_timeout, **options):
        commands = launch.server_commands(host=settings.LLAMACPP_HOST)
        for command in commands:
            if command.skip_reason:
                self.stderr.write(f"not starting {command.label}: {command.skip_reason}")
        if dry_run:
            for command in commands:
                self.stdout.write(("# skipped: " if command.skip_reason else "") + " ".join(command.argv))
            return
        commands = [command for command in commands if not command.skip_reason]
        if not commands:
            self.stdout.write("no locally hosted endpoint can run here; nothing to serve")
            return
        busy = [command for command in commands if launch.port_in_use(command.base_url)]
        if busy:
            raise CommandError(
                "already in use: "
                + ", ".join(command.base_url for command in busy)
                + " (another arena running?); stop it, or change the endpoint's port in the admin"
            )
        processes = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for command in commands:
                self.stdout.write(f"starting {command.label}: {' '.join(command.argv)}")
                processes.append(launch.start_process(command.argv, env=launch.model_server_env()))
            for command, process in zip(commands, processes, strict=True):
                launch.wait_until_ready(command.base_url, timeout=ready_timeout, process=process)
                self.stdout.write(f"ready: {command.base_url}")
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.5)
        finally:
            for process in processes:
                launch.stop_process(process)
