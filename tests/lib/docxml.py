# SPDX-License-Identifier: BSD-3-Clause
"""The ```xml blocks of a Markdown file: what test_docs_xml.py validates
and what the qemu-libvirt test builds its domains from. A block can carry a
tag, an HTML comment on the line before it: <!-- qemu-libvirt: TAG -->."""
import re
import textwrap

FENCE = re.compile(r"^[ \t]*```xml[ \t]*\n(.*?)^[ \t]*```[ \t]*$",
                   re.M | re.S)
TAG = re.compile(r"<!-- qemu-libvirt: ([\w-]+) -->\s*\Z")


def xml_blocks(path):
    """(line number, tag or None, text) of each ```xml block of PATH; the
    text without the indentation of a block inside a list item."""
    with open(path) as f:
        s = f.read()
    for m in FENCE.finditer(s):
        tag = TAG.search(s[:m.start()])
        yield (s.count("\n", 0, m.start()) + 1, tag.group(1) if tag else None,
               textwrap.dedent(m.group(1)))


def tagged(path):
    """{tag: text} of PATH's tagged ```xml blocks."""
    return {tag: text for _, tag, text in xml_blocks(path) if tag}
