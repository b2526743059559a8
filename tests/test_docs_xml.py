#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Every ```xml block in README.md and docs/*.md passes libvirt's own
schema check (virt-xml-validate), so the libvirt examples cannot rot.

A whole <domain> is checked as it is. A fragment (an <interface>, a
<memoryBacking>, a <qemu:override>, ...) is put into a minimal domain,
inside <devices> if it is a device, and that domain is checked. The checker
must also refuse a broken fragment; otherwise a wrapping that hides the
fragment from the schema would pass everything. Exit 77 (skipped) when
virt-xml-validate is not installed (Debian: libvirt-clients)."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from docxml import xml_blocks  # noqa: E402

ROOT = os.path.dirname(HERE)
DOCS = [os.path.join(ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "*.md")))
# The blocks the qemu-libvirt test reads from docs/QEMU.md, by their tags.
LIBVIRT_TAGS = {"domain", "iface-vhostd-server", "iface-vhostd-client",
                "tcg-override"}
DEVICES = {"interface", "serial", "console", "disk", "controller", "channel",
           "memballoon", "hostdev", "emulator", "filesystem"}
SKELETON = """<domain type='kvm'>
  <name>docs-xml</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
%s
  <devices>
%s
  </devices>
</domain>
"""


def as_domain(text):
    """TEXT as a whole domain document (a fragment wrapped in one)."""
    root = ET.fromstring(text)
    name = root.tag.rsplit("}", 1)[-1]
    if name == "domain":
        return text
    if name in DEVICES:
        return SKELETON % ("", text)
    return SKELETON % (text, "")


def validate(validator, doc, tmp):
    """virt-xml-validate's (exit code, output) for the domain DOC."""
    path = os.path.join(tmp, "domain.xml")
    with open(path, "w") as f:
        f.write(doc)
    p = subprocess.run([validator, path, "domain"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    return p.returncode, p.stdout.strip()


def main():
    validator = shutil.which("virt-xml-validate")
    if not validator:
        print("docs-xml: virt-xml-validate not found (Debian: apt-get install"
              " libvirt-clients); skipped")
        return 77
    failed, tags, count = [], set(), 0
    with tempfile.TemporaryDirectory(prefix="vhostd-docs-xml-") as tmp:
        # The checker itself: a vhostuser interface without its socket
        # must be refused once wrapped.
        rc, out = validate(validator, as_domain(
            "<interface type='vhostuser'><model type='virtio'/></interface>"),
            tmp)
        if rc == 0:
            print("docs-xml: a broken <interface> passed: the check is void")
            return 1
        for doc in DOCS:
            rel = os.path.relpath(doc, ROOT)
            for line, tag, text in xml_blocks(doc):
                count += 1
                where = "%s:%d%s" % (rel, line, " (%s)" % tag if tag else "")
                try:
                    rc, out = validate(validator, as_domain(text), tmp)
                except ET.ParseError as e:
                    rc, out = 1, "not well-formed XML: %s" % e
                print("%s: %s" % (where, "valid" if rc == 0 else "INVALID"))
                if rc != 0:
                    failed.append("%s:\n%s\n%s" % (where, text, out))
                if tag and rel == os.path.join("docs", "QEMU.md"):
                    tags.add(tag)
    for f in failed:
        print("----- %s" % f)
    if tags != LIBVIRT_TAGS:
        print("docs/QEMU.md: tagged blocks %s, qemu-libvirt reads %s" %
              (sorted(tags), sorted(LIBVIRT_TAGS)))
        return 1
    print("docs-xml: %d block(s), %d invalid" % (count, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
