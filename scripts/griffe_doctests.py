"""A griffe extension for the docs site: the `>>>` examples of our docstrings become Python code blocks.

Our docstrings carry bare doctest examples (they run as tests); Markdown would read their `>>>` as
quotes and a `# comment` line as a heading. `mkdocs.yml` loads this file in mkdocstrings' options.
"""

from __future__ import annotations

from typing import Any

from griffe import Extension


def fence_doctests(text: str) -> str:
    r"""Wrap each run of doctest lines (prompts, continuations and their output) in a ```python block.

    >>> fence_doctests("Add.\n\n>>> 1 + 1\n2\n\nDone.").splitlines()
    ['Add.', '', '```python', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    out: list[str] = []
    inside = False
    for line in text.split("\n"):
        starts = line.lstrip().startswith(">>>")
        if starts and not inside:
            out.append("```python")
            inside = True
        elif inside and not line.strip():
            out.append("```")
            inside = False
        out.append(line)
    if inside:
        out.append("```")
    return "\n".join(out)


class DoctestBlocks(Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
