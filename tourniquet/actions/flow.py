"""``flow.*`` actions: steps about the run itself rather than an outside system."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from tourniquet.flows.context import ActionContext
from tourniquet.registry import action


class NoteResult(BaseModel):
    message: str


@action("flow.note")
def note(ctx: ActionContext, message: Annotated[str, Field(description="Text to record in the journal.")]) -> NoteResult:
    """Write a line in the journal (and the run log), e.g. why the playbook was started."""
    ctx.journal.write("note", step=ctx.step, message=message)
    return NoteResult(message=message)
