"""Composing, rendering, checking, previewing and test-sending an issue."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.common import (
    config_option,
    main,
    reports_errors,
    settings_from,
    signing_key_note,
)

if TYPE_CHECKING:
    pass


def parse_since(value: str | None) -> dt.date | None:
    """--since: a date (YYYY-MM-DD), or "last-issue" (the default) for the date of the
    last issue composed from the same feed."""
    if value is None or value == "last-issue":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD) or last-issue", param_hint="--since"
        ) from None


@main.command()
@click.argument("sources", nargs=-1)
@click.option("--url", help="The web address of a local file's conversation (for 'Read more').")
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="URL|FILE",
    help="Compose from the new entries of an RSS or Atom feed (repeatable).",
)
@click.option(
    "--since",
    metavar="DATE|last-issue",
    help="With --feed: entries published on or after DATE (default: since the last issue from the feed).",
)
@click.option(
    "--max", "max_entries", type=click.IntRange(1), help="With --feed: at most N conversations."
)
@click.option(
    "--match", metavar="REGEX", help="With --feed: only entries whose link or title matches."
)
@click.option(
    "--out", "out_dir", metavar="DIR", help="Folder for the issue file (default: issues/)."
)
@click.option("--dry-run", is_flag=True, help="Print the issue YAML instead of writing it.")
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing issue file; with --feed, also reuse entries earlier issues used.",
)
@config_option
@reports_errors
def compose(
    sources: tuple[str, ...],
    url: str | None,
    feeds: tuple[str, ...],
    since: str | None,
    max_entries: int | None,
    match: str | None,
    out_dir: str | None,
    dry_run: bool,
    force: bool,
    config_path: str | None,
) -> None:
    """Read conversation SOURCES (files or http(s) URLs), or the new entries of --feed,
    and write one issue file."""
    from digest.comments import comments_for, write_comments
    from digest.compose import compose_from_feeds, compose_read
    from digest.issuefile import dump_issue, write_issue

    if bool(sources) == bool(feeds):
        raise click.UsageError("give conversation SOURCES or --feed, one of the two")
    if not feeds and (since or max_entries or match):
        raise click.UsageError("--since, --max and --match go with --feed")
    settings = settings_from(config_path)
    folder = Path(out_dir) if out_dir else None
    if feeds:
        result = compose_from_feeds(
            list(feeds),
            settings,
            since=parse_since(since),
            max_entries=max_entries,
            match=match,
            force=force,
            out_dir=folder,
        )
        for reason in result.skipped:
            click.echo(f"warning: skipped {reason}", err=True)
        issue, path, read = result.issue, result.path, list(result.conversations)
    else:
        issue, path, read = compose_read(list(sources), settings, url=url, out_dir=folder)
    text = dump_issue(issue)
    if dry_run:
        click.echo(text, nl=False)
        return
    write_issue(text, path, force=force)
    write_comments(path, comments_for(read, issue))  # for choosing excerpts in the desk
    experts = sum(len(s.experts) for s in issue.sections)
    click.echo(f"composed {len(issue.sections)} conversation(s), {experts} expert(s)", err=True)
    click.echo(str(path))


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", metavar="DIR", help="Folder for the output (default: build/).")
@config_option
@reports_errors
def render(issue: Path, out_dir: str | None, config_path: str | None) -> None:
    """Render ISSUE to HTML, plain text and a complete .eml message."""
    from digest.build import build, write_outputs

    settings = settings_from(config_path)
    result = build(issue, settings)
    for path in write_outputs(result, Path(out_dir or settings.render.out_dir)):
        click.echo(str(path))


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@config_option
@reports_errors
def check(issue: Path, config_path: str | None) -> None:
    """Check ISSUE before sending: exit 1 when any error is found."""
    from digest.build import build, greeting_without_field, notes_without_fields
    from digest.checks import has_errors

    settings = settings_from(config_path)
    result = build(issue, settings, for_subscribers=True)
    for finding in result.findings:
        click.echo(str(finding))
    without = greeting_without_field(result)
    if without is not None:  # what a subscriber without the greeting's field sees
        field = result.rendered.greeting_field
        said = f"the greeting {without!r}" if without else "no greeting line"
        click.echo(f"note: a subscriber without {field} gets {said}")
    for note in notes_without_fields(result.rendered):
        click.echo(f"note: {note}")
    signing_key_note(settings)
    errors = sum(f.level == "error" for f in result.findings)
    warnings = len(result.findings) - errors
    click.echo(f"{issue}: {errors} error(s), {warnings} warning(s)", err=True)
    if has_errors(result.findings):
        sys.exit(1)


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8025,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in a browser.")
@config_option
@reports_errors
def preview(issue: Path, host: str, port: int, open_browser: bool, config_path: str | None) -> None:
    """Serve a live preview of ISSUE that re-renders on every save."""
    import webbrowser

    from digest.config import load_settings
    from digest.preview import serve
    from digest.storeconfig import resolve_config_path

    config = resolve_config_path(config_path)
    load_settings(config)  # a broken config at start is an error, later ones show in the page

    def ready(address: str) -> None:
        click.echo(f"previewing {issue} at {address} (Ctrl+C to stop)", err=True)
        click.echo(address)
        if open_browser:
            webbrowser.open(address)

    serve(issue, config, host, port, ready)


@main.command()
@click.argument("issue", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--test", "test_send", is_flag=True, help="Send a test to staff inboxes (required).")
@click.option(
    "--to",
    "to",
    metavar="ADDRESSES",
    help="Comma-separated addresses instead of config's staff list.",
)
@config_option
@reports_errors
def send(issue: Path, test_send: bool, to: str | None, config_path: str | None) -> None:
    """Send a test of ISSUE to staff, subject prefixed "[TEST] "."""
    from digest.testsend import send_test

    if not test_send:
        raise click.UsageError(
            "digest send only sends tests (--test); subscribers get an issue through digest schedule"
        )
    settings = settings_from(config_path)
    addresses = [a for a in (to or "").split(",") if a.strip()] or None
    outcomes = send_test(issue, settings, to=addresses)
    for outcome in outcomes:
        if outcome.status == "accepted":
            click.echo(f"accepted  {outcome.email}  {outcome.message_id or ''}".rstrip())
        else:
            click.echo(f"{outcome.status:<8}  {outcome.email}  {outcome.reason or ''}".rstrip())
    refused = sum(o.status != "accepted" for o in outcomes)
    click.echo(
        f"test send via {settings.provider.name}: {len(outcomes) - refused} accepted, {refused} not",
        err=True,
    )
    if refused:
        sys.exit(1)


@main.command()
@click.option("--no-send", is_flag=True, help="Write and check the draft; send nothing.")
@config_option
@reports_errors
def draft(no_send: bool, config_path: str | None) -> None:
    """Draft an issue from the new entries of draft.feeds and send it to staff.

    For cron or a systemd timer: with nothing new there is no draft and nothing is sent.
    Subscribers get nothing until an editor schedules the draft."""
    from digest.draft import make_draft

    settings = settings_from(config_path)
    made = make_draft(settings, send=not no_send)
    if made is None:
        click.echo(f"nothing new in {', '.join(settings.draft.feeds)}; no draft", err=True)
        return
    for reason in made.composed.skipped:
        click.echo(f"warning: skipped {reason}", err=True)
    sections = len(made.composed.issue.sections)
    click.echo(f"drafted {sections} conversation(s)", err=True)
    click.echo(str(made.path))
    for outcome in made.outcomes:
        detail = outcome.message_id if outcome.status == "accepted" else outcome.reason
        click.echo(f"{outcome.status:<8}  {outcome.email}  {detail or ''}".rstrip(), err=True)
    if any(o.status != "accepted" for o in made.outcomes):
        sys.exit(1)


@main.command("inspect")
@click.argument("source")
@click.option("--url", default=None, help="The page's public address, for a local file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@config_option
@reports_errors
def inspect_command(source: str, url: str | None, as_json: bool, config_path: str | None) -> None:
    """Show how SOURCE (a file or an http(s) URL) is read: title, date, intro and each
    expert, before composing anything from it."""
    import json

    from digest.inspect import as_text, inspect_source
    from digest.sources.fetch import make_client

    settings = settings_from(config_path)
    with make_client(settings.fetch) as client:
        described = inspect_source(source, settings=settings, url=url, client=client)
    if as_json:
        click.echo(json.dumps(described, ensure_ascii=False, indent=2))
    else:
        click.echo(as_text(described), nl=False)
