"""Core memory: six typed blocks that are always in the LLM's prompt (SPEC §2.1)."""

from __future__ import annotations

import math
from dataclasses import replace

from ..backends.base import Tx
from ..backends.shortcuts import CoreDelete, CorePut, CoreSetImportance
from ..constants import (CORE_MEMORY_BLOCK_LABEL_BYTES_MAX, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX,
                         CORE_MEMORY_IMPORTANCE_DEFAULT)
from ..errors import ConflictError, InvalidInputError, LimitExceededError, NotFoundError
from ..models import (BlockType, ChangeKind, MemoryBlock, Tier, checked_text,
                      parse_enum)
from ..validation import (number_argument, optional_text_argument,
                          optional_whole_number_argument, text_argument,
                          whole_number_argument)
from .context import TierContext
from .history import block_from_record, record_block, record_change, restorable, stamp

# Render order: the order BlockType declares its members in (SPEC §2.1).
RENDER_ORDER: dict[BlockType, int] = {block_type: i for i, block_type in enumerate(BlockType)}


def _checked_importance(importance: float) -> float:
    importance = number_argument(importance, "importance")
    if not math.isfinite(importance) or not 0.0 <= importance <= 1.0:
        raise InvalidInputError(f"importance must be between 0.0 and 1.0, got {importance!r}")
    return importance


class CoreMemory:
    def __init__(self, context: TierContext) -> None:
        self._context = context

    async def set_block(self, block_type: BlockType | str, content: str, *,
                        label: str | None = None, importance: float | None = None,
                        if_version: int | None = None) -> MemoryBlock:
        """Create or replace a block. A label or importance not given is kept.

        With `if_version`, refuse with ConflictError unless the stored block is at that
        version (0: there must be no block yet).
        """
        block_type = parse_enum(BlockType, block_type, "block type")
        content = text_argument(content, "content")
        label = optional_text_argument(label, "label")
        if_version = optional_whole_number_argument(if_version, "if_version")
        checked_text(content, f"{block_type} block content")
        if label is not None:
            checked_text(label, "a block label")
        size = len(content.encode())
        if size > CORE_MEMORY_BLOCK_SIZE_BYTES_MAX:
            raise LimitExceededError(f"{block_type} block is {size} bytes; the limit is "
                                     f"{CORE_MEMORY_BLOCK_SIZE_BYTES_MAX}")
        if label is not None and len(label.encode()) > CORE_MEMORY_BLOCK_LABEL_BYTES_MAX:
            raise LimitExceededError(f"label is {len(label.encode())} bytes; the limit is "
                                     f"{CORE_MEMORY_BLOCK_LABEL_BYTES_MAX}")
        if importance is not None:
            importance = _checked_importance(importance)
        ctx = self._context
        return await ctx.write(
            lambda tx: self._put(tx, block_type, content, label, importance, if_version),
            lambda backend: backend.shortcut(ctx.agent, CorePut(
                **stamp(ctx), block_type=block_type, content=content, label=label,
                importance=importance, if_version=if_version,
                core_size_bytes_max=ctx.core_size_bytes_max)))

    async def _put(self, tx: Tx, block_type: BlockType, content: str, label: str | None,
                   importance: float | None, if_version: int | None) -> MemoryBlock:
        """set_block's rule, its arguments already checked."""
        ctx = self._context
        size = len(content.encode())
        existing = await tx.core_get(block_type)
        current_version = existing.version if existing else 0
        if if_version is not None and if_version != current_version:
            raise ConflictError(f"{block_type} block is at version {current_version}, "
                                f"not {if_version}: it changed since you read it")
        others = sum(b.size_bytes for b in await tx.core_list() if b.block_type != block_type)
        if others + size > ctx.core_size_bytes_max:
            raise LimitExceededError(
                f"core memory would hold {others + size} bytes; the limit is "
                f"{ctx.core_size_bytes_max}")
        now = ctx.clock.now_ms()
        if existing is None:
            block = MemoryBlock(block_type, content, label or None,
                                CORE_MEMORY_IMPORTANCE_DEFAULT if importance is None
                                else importance, 1, now, now)
        else:
            block = replace(existing, content=content, version=existing.version + 1,
                            updated_at=now,
                            label=existing.label if label is None else (label or None),
                            importance=existing.importance if importance is None
                            else importance)
        await tx.core_put(block)
        await record_block(tx, ctx, block)
        assert block.version == current_version + 1, "every change grows the version"
        return block

    async def restore(self, block_type: BlockType | str, version: int, *,
                      if_version: int | None = None) -> MemoryBlock:
        """Write the block as history `version` of it left it (content, label, importance)
        as a new version; a deleted block comes back. With `if_version` (the newest history
        version you saw), ConflictError if the block changed since."""
        block_type = parse_enum(BlockType, block_type, "block type")
        version = whole_number_argument(version, "version")
        if_version = optional_whole_number_argument(if_version, "if_version")

        async def body(tx: Tx) -> MemoryBlock:
            record = await restorable(tx, Tier.CORE, block_type.value, version, if_version)
            old = block_from_record(record)
            return await self._put(tx, block_type, old.content, old.label or "",
                                   old.importance, None)
        return await self._context.write(body)

    async def get_block(self, block_type: BlockType | str) -> MemoryBlock | None:
        block_type = parse_enum(BlockType, block_type, "block type")
        return await self._context.read(lambda tx: tx.core_get(block_type))

    async def delete_block(self, block_type: BlockType | str) -> bool:
        block_type = parse_enum(BlockType, block_type, "block type")
        ctx = self._context

        async def body(tx: Tx) -> bool:
            existed = await tx.core_delete(block_type)
            if existed:
                await record_change(tx, ctx, Tier.CORE, ChangeKind.DELETE, block_type.value,
                                    ctx.clock.now_ms())
            return existed
        return await ctx.write(body, lambda backend: backend.shortcut(
            ctx.agent, CoreDelete(**stamp(ctx), block_type=block_type)))

    async def set_importance(self, block_type: BlockType | str, importance: float) -> MemoryBlock:
        block_type = parse_enum(BlockType, block_type, "block type")
        importance = _checked_importance(importance)
        ctx = self._context

        async def body(tx: Tx) -> MemoryBlock:
            existing = await tx.core_get(block_type)
            if existing is None:
                raise NotFoundError(f"no {block_type} block")
            now = ctx.clock.now_ms()
            block = replace(existing, importance=importance, version=existing.version + 1,
                            updated_at=now)
            await tx.core_put(block)
            await record_block(tx, ctx, block)
            return block
        return await ctx.write(body, lambda backend: backend.shortcut(ctx.agent, CoreSetImportance(
            **stamp(ctx), block_type=block_type, importance=importance)))

    async def blocks(self) -> list[MemoryBlock]:
        """Every block, in render order."""
        blocks = await self._context.read(lambda tx: tx.core_list())
        return sorted(blocks, key=lambda block: RENDER_ORDER[block.block_type])

    async def render(self) -> str:
        """The XML the LLM sees, blocks in render order, content XML-escaped."""
        lines = ["<core_memory>"]
        for block in await self.blocks():
            label = f' label="{block.label.translate(_XML_ATTRIBUTE_ENTITIES)}"' \
                if block.label else ""
            lines.append(f'<block type="{block.block_type}"{label} '
                         f'importance="{block.importance:.2f}">')
            lines.append(block.content.translate(_XML_TEXT_ENTITIES))
            lines.append("</block>")
        lines.append("</core_memory>")
        return "\n".join(lines)

    async def render_markdown(self) -> str:
        sections = ["# Core Memory"]
        for block in await self.blocks():
            title = block.block_type.value.capitalize()
            if block.label:
                title += f" - {block.label}"
            sections.append(f"## {title} (importance: {block.importance:.2f})\n\n{block.content}")
        return "\n\n".join(sections)

    async def used_bytes(self) -> int:
        return sum(b.size_bytes for b in await self.blocks())

    async def available_bytes(self) -> int:
        return self._context.core_size_bytes_max - await self.used_bytes()

    async def utilization(self) -> float:
        """Used bytes as a fraction of the limit, 0.0–1.0."""
        return await self.used_bytes() / self._context.core_size_bytes_max


# What render escapes (xml.sax.saxutils.escape's rules, without loading xml.sax, urllib,
# http and email at import): &, <, > in text, and " too in an attribute.
_XML_TEXT_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_XML_ATTRIBUTE_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})
