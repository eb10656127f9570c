"""Lists in and out of chat: ``/export segment <name> [xlsx|csv]`` hands over a segment's customers as a
spreadsheet. The file is built by crm_core.exporting (the columns of ``chatcrm export customers``), which
also audits it; this module only decides who may ask and how the answer reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bot.args import Kind, arg
from bot.context import Context
from bot.messages import File, Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.exporting.run import SEGMENT_FORMATS, export_segment
from crm_core.i18n import N_, _, format_number, ngettext

group = CommandGroup()

MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


@group.command(
    "export segment",
    summary=N_("A segment's customers as a spreadsheet (xlsx or csv), sent to you privately"),
    permission=Permission.SEGMENTS_EXPORT,
    params=[
        arg("name", label=N_("Segment name"), hint="vip-de", max_length=60),
        arg("format", Kind.CHOICE, required=False, choices=SEGMENT_FORMATS, label=N_("Format")),
    ],
)
def export_segment_command(req: Request, ctx: Context) -> Reply:
    fmt = req.args.get("format") or "xlsx"
    # The rows stream into a file in a directory of our own, which goes away with the request: only the
    # finished (compressed) file is read into memory, to hand it to the platform.
    with tempfile.TemporaryDirectory(prefix="chatcrm-export-") as directory:
        done = export_segment(
            ctx.uow, req.args["name"], fmt, Path(directory), max_rows=ctx.settings.chat_export_max_rows
        )
        if done.path is None:
            return Reply(
                text=_("Segment {name} has no customers now: there is nothing to export.", name=done.segment),
                footer=_("See its filter with /segment show {name}.", name=done.segment),
                tone=Tone.WARNING,
                private=True,
            )
        content = done.path.read_bytes()
        name = done.path.name
    # Private, like every export: the file holds contact details, and a channel may have members (or
    # customers, in a shared channel) whose role may not take them away. In a direct message it lands there.
    return Reply(
        text=ngettext(
            "Segment {name}: {count} customer in {file}, sent to you privately. The export is in the audit log.",
            "Segment {name}: {count} customers in {file}, sent to you privately. The export is in the audit log.",
            done.rows,
            name=done.segment,
            count=format_number(done.rows),
            file=name,
        ),
        file=File(name=name, content=content, mime=MIME[fmt], title=_("Segment {name}", name=done.segment)),
        tone=Tone.SUCCESS,
        private=True,
    )
