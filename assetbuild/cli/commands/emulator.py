"""assetbuild emulator: the SEE2AI emulator served over HTTP."""

from __future__ import annotations

from typing import Any

import click

from assetbuild.cli.app import (
    EXIT_OK,
    cli,
    echo,
)
from assetbuild.errors import (
    UsageError,
)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--latency", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds from submit to a terminal state (the minimum, with --latency-max).")
@click.option("--latency-max", default=None, type=click.FloatRange(0),
              help="Upper bound of the latency: each task takes a random time between.")
@click.option("--failure-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of tasks that end as failed (refunded, as the platform does).")
@click.option("--rate-429", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 429 (rate limited).")
@click.option("--retry-after", default=1.0, type=click.FloatRange(0), show_default=True,
              help="Retry-After seconds sent with each 429.")
@click.option("--rate-500", default=0.0, type=click.FloatRange(0, 1),
              help="Share of requests answered 500.")
@click.option("--rate-504", default=0.0, type=click.FloatRange(0, 1),
              help="Share of status polls answered 504.")
@click.option("--drop-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of connections dropped before any answer (no task is created).")
@click.option("--truncate-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of downloads cut short of their Content-Length.")
@click.option("--slow-status", default=0.0, type=click.FloatRange(0),
              help="Seconds added to every status answer.")
@click.option("--balance", default=None, type=click.IntRange(0),
              help="Points before 402 (default: unlimited).")
@click.option("--api-key", default=None, help="Accept only this key (default: any bearer key).")
@click.option("--seed", default=None, type=int, help="Seed the fault rolls.")
@click.option("--plain-images", is_flag=True, help="Flat images without captions (load tests).")
@click.option("--dialect", type=click.Choice(["vendor", "platform"]), default="vendor",
              show_default=True, help="Answer as the vendor page says (vendor) or as the "
                                      "platform's client scripts read it (platform).")
@click.option("--log", "log_requests", is_flag=True, help="Print a line per request.")
def emulator(host: str, port: int, latency: float, latency_max: float | None,
             log_requests: bool, **faults: Any) -> int:
    """Serve the SEE2AI-compatible emulator over HTTP (point SEE2AI_BASE_URL at it).

    POST /_emulator/config with a JSON object of these options' names (latency,
    latency_max, failure_rate, rate_429, ...) changes them while it runs; GET
    /_emulator/stats counts submits, polls, downloads and faults.
    """
    import socket

    from assetbuild.emulator import Emulator, EmulatorConfig
    from assetbuild.emulator.server import make_server

    if latency_max is not None and latency_max < latency:
        raise UsageError(f"--latency-max {latency_max:g} is below --latency {latency:g}; "
                         "give the minimum first and a larger maximum")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another "
                         "emulator may be running there; try another --port)") from None
    config = EmulatorConfig(latency_min=latency, latency_max=latency_max or latency, **faults)
    echo(f"SEE2AI emulator on http://{host}:{port} (SEE2AI_BASE_URL=http://{host}:{port})",
         err=True)
    make_server(Emulator(config), host, port,
                log_level="info" if log_requests else "warning",
                access_log=log_requests).run()
    return EXIT_OK


