"""`harness cache list` and `harness cache prune`: the artifact cache as a table (every
variant, model and eval pack with its size, last use and status) and its pruning."""

from __future__ import annotations

import json


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _cache_table(title: str, entries: list[dict]):
    from rich.table import Table

    table = Table(title=title)
    for col in ("kind", "id", "model", "method", "format", "precision", "size", "last used",
                "status"):
        table.add_column(col, overflow="fold", justify="right" if col == "size" else "left")
    for e in entries:
        status = e["status"] if not e["problem"] else f"{e['status']}: {e['problem']}"
        style = {"ok": None, "corrupt": "red", "leftover": "yellow"}.get(e["status"])
        table.add_row(e["kind"], e["id"], e["model"] or "", e["method"] or "",
                      e["format"] or "", e["precision"] or "", _human_bytes(e["size_bytes"]),
                      (e["last_used"] or "").replace("+00:00", "Z"), status, style=style)
    return table


def list_command(args, console) -> int:
    from harness.build.cache import cache_usage, list_cache

    entries = list_cache(args.cache)
    if args.format == "json":
        print(json.dumps(entries, indent=2))
        return 0
    total = cache_usage(args.cache)
    variants = [e for e in entries if e["kind"] == "variant"]
    corrupt = sum(e["status"] == "corrupt" for e in variants)
    console.print(_cache_table(f"{args.cache}: {len(variants)} variants "
                               f"({corrupt} corrupt), {_human_bytes(total)} in all", entries))
    return 0


def prune_command(args, console) -> int:
    from harness.build.cache import prune_cache

    removed = prune_cache(args.cache, older_than_days=args.older_than_days,
                          corrupt_only=args.corrupt, dry_run=args.dry_run)
    freed = sum(e["size_bytes"] for e in removed)
    verb = "would remove" if args.dry_run else "removed"
    if removed:
        console.print(_cache_table(f"{verb} {len(removed)} folders", removed))
    console.print(f"{verb} {len(removed)} folders from {args.cache}, "
                  f"{_human_bytes(freed)}" + (" (dry run: nothing deleted)" if args.dry_run
                                             else " freed"))
    return 0
