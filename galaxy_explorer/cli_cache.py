"""``galaxy-explorer cache info | verify | merge``: look after embedding caches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_cache_command(sub: Any) -> None:
    """Register ``cache`` and its sub-commands on the main parser's subparsers."""
    p = sub.add_parser("cache", help="inspect, verify or merge embedding caches")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)

    for name, help_text, func in (
        ("info", "counts, models, size on disk and orphan shards", cmd_cache_info),
        ("verify", "check shards against the index; move damage aside", cmd_cache_verify),
    ):
        q = csub.add_parser(name, help=help_text)
        q.add_argument(
            "cache",
            nargs="?",
            type=Path,
            default=None,
            help="cache folder (default: the user cache folder)",
        )
        q.set_defaults(func=func)

    q = csub.add_parser("merge", help="copy the embeddings of other caches into one")
    q.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="cache folders to read")
    q.add_argument("--into", type=Path, required=True, metavar="DST", help="cache folder to add to")
    q.set_defaults(func=cmd_cache_merge)


def _root(path: Path | None) -> Path:
    from galaxy_explorer.cli_common import EXIT_USAGE, CliError
    from galaxy_explorer.core.cache import STORE_DIR, default_cache_dir

    root = path if path is not None else default_cache_dir()
    if root.exists() and not root.is_dir():
        raise CliError(f"{root}: the cache must be a folder, and this is a file", EXIT_USAGE)
    if not (root / STORE_DIR / "index.sqlite").exists():
        raise CliError(f"{root}: no embedding cache here", EXIT_USAGE)
    return root


def cmd_cache_info(args: argparse.Namespace) -> int:
    from galaxy_explorer.core.cache import cache_info

    info = cache_info(_root(args.cache))
    print(
        f"cache {info['root']}: {info['vectors']} embeddings, {info['bytes'] / 1e6:.1f} MB, "
        f"{info['orphan_shards']} orphan shard(s), {info['remembered_files']} remembered file hashes"
    )
    for s in info["spaces"]:
        print(
            f"  {s['model_key']}  [{s['render_key']}]  dim {s['dim']}: {s['vectors']} embeddings "
            f"in {s['shards']} shard(s), {s['failures']} failed file(s)"
        )
    return 0


def cmd_cache_verify(args: argparse.Namespace) -> int:
    from galaxy_explorer.core.cache import verify_cache

    rep = verify_cache(_root(args.cache))
    print(
        f"{rep['vectors']} embeddings intact in {rep['shards']} shard(s); "
        f"{rep['bad_rows']} damaged (they are embedded again by the next run); "
        f"{rep['orphans_deleted']} unused shard(s) deleted"
    )
    return 0 if rep["bad_rows"] == 0 else 1


def cmd_cache_merge(args: argparse.Namespace) -> int:
    from galaxy_explorer.cli_common import EXIT_USAGE, CliError
    from galaxy_explorer.core.cache import merge_caches

    srcs = [_root(s) for s in args.sources]
    if args.into.exists() and not args.into.is_dir():
        raise CliError(f"{args.into}: the cache must be a folder, and this is a file", EXIT_USAGE)
    n = merge_caches(srcs, args.into)
    print(f"{n} embeddings added to {args.into}", file=sys.stderr)
    return 0
