"""`cairn-operator`: runs the Cairn controllers under kopf, with a liveness endpoint and
Prometheus metrics."""

import argparse
import ctypes
import ctypes.util
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence

import kopf

from cairn import __version__
from cairn.observability import logs, server

DEFAULT_HEALTH_ADDR = "0.0.0.0:8080"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...]  # empty: every namespace
    health_addr: str
    peering: str | None  # None: standalone
    metrics_addr: str  # "0" or "": no metrics
    log_format: kopf.LogFormat
    log_level: str  # one of LOG_LEVELS

    @property
    def liveness_endpoint(self) -> str:
        return f"http://{self.health_addr}/healthz"


def _log_format(name: str) -> kopf.LogFormat:
    try:
        return kopf.LogFormat[name.upper()]
    except KeyError:
        choices = ", ".join(f.name.lower() for f in kopf.LogFormat)
        raise argparse.ArgumentTypeError(f"{name!r} is not one of: {choices}") from None


def _metrics_addr(value: str) -> str:
    try:
        server.parse_address(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _log_level(name: str) -> str:
    if name.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of: {', '.join(LOG_LEVELS)}")
    return name.lower()


def _split_namespaces(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ
) -> OperatorOptions:
    """Read options from the command line; each has an environment variable for the Helm chart."""
    parser = argparse.ArgumentParser(
        prog="cairn-operator",
        description="Run the Cairn operator against the cluster of $KUBECONFIG or in-cluster.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="watch only this namespace; repeatable, globs such as 'team-*' allowed "
        "(env CAIRN_NAMESPACES, comma-separated; default: every namespace)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--health-addr",
        default=environ.get("CAIRN_HEALTH_ADDR", DEFAULT_HEALTH_ADDR),
        metavar="HOST:PORT",
        help="serve the liveness probe at http://HOST:PORT/healthz "
        f"(env CAIRN_HEALTH_ADDR; default {DEFAULT_HEALTH_ADDR})",
    )
    parser.add_argument(
        "--peering",
        default=environ.get("CAIRN_PEERING") or None,
        metavar="NAME",
        help="coordinate replicas through this KopfPeering object, which needs kopf's peering "
        "CRDs (env CAIRN_PEERING; default: standalone, for a single replica)",
    )
    parser.add_argument(
        "--metrics-addr",
        type=_metrics_addr,
        default=environ.get(server.ENV, server.DEFAULT_ADDRESS),
        metavar="HOST:PORT",
        help=f"serve Prometheus metrics at http://HOST:PORT{server.PATH}; 0 turns them off "
        f"(env {server.ENV}; default {server.DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--log-format",
        type=_log_format,
        default=environ.get("CAIRN_LOG_FORMAT", "full"),
        help="plain, full or json: one JSON object a line (env CAIRN_LOG_FORMAT; default full)",
    )
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=environ.get("CAIRN_LOG_LEVEL", "info"),
        help=f"{', '.join(LOG_LEVELS)} (env CAIRN_LOG_LEVEL; default info)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const="debug",
        help="log at debug level (the same as --log-level debug)",
    )
    parser.add_argument("--version", action="version", version=f"cairn-operator {__version__}")
    args = parser.parse_args(argv)

    if args.all_namespaces:
        namespaces: list[str] = []
    elif args.namespaces:
        namespaces = args.namespaces
    else:
        namespaces = _split_namespaces(environ.get("CAIRN_NAMESPACES", ""))
    return OperatorOptions(
        namespaces=tuple(namespaces),
        health_addr=args.health_addr,
        peering=args.peering,
        metrics_addr=args.metrics_addr,
        log_format=args.log_format,
        log_level=args.log_level,
    )


# glibc gives threads malloc arenas of their own, up to eight per core, and an arena keeps what
# was freed in it: the operator's threads (kopf's workers, the resync's burst, the API client's
# pool) each grew one, and a burst left several MiB behind in them. Two arenas serve them as well;
# set before any thread starts. MALLOC_ARENA_MAX in the environment, when set, still decides.
M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
MALLOC_ARENAS = 2


def limit_malloc_arenas() -> None:
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    limit_malloc_arenas()
    # log_prefix=None: as `kopf run` does, text lines about an object start with [namespace/name]
    # (JSON lines carry it as "object").
    kopf.configure(
        verbose=options.log_level == "debug", log_format=options.log_format, log_prefix=None
    )
    logging.getLogger().setLevel(options.log_level.upper())
    if options.log_level != "debug":
        logs.quiet_handler_successes()
    # A startup handler installs it too (for `kopf run`); here, kopf's first lines get it as well.
    logs.install()
    # Importing the controllers registers their handlers with kopf's default registry.
    import cairn.controllers  # noqa: F401

    kopf.run(
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        standalone=options.peering is None,
        peering_name=options.peering,
        liveness_endpoint=options.liveness_endpoint,
        # Read by the startup handler that serves the metrics (controllers.settings).
        memo=kopf.Memo(metrics_addr=options.metrics_addr),
    )


if __name__ == "__main__":
    main()
