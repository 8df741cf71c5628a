#!/usr/bin/env python3
"""Writes the man page triggers(1) from the binary's own --help output.

    gen-man.py BIN VERSION TEMPLATE OUT

Walks the command tree from `BIN --help` (every "Subcommands:" entry, then
its own --help), and fills TEMPLATE (packaging/triggers.1.in, roff) at
@VERSION@, @SYNOPSIS@ and @COMMANDS@: one subsection per command with its
options, their defaults and environment variables. The flags therefore never
drift from the binary. The build runs it when python3 is present; otherwise
the committed packaging/triggers.1 (refreshed by `make man`) is installed.

Parses CLI11's help layout: a line "Name:" at column 0 opens a section; in
a section an entry starts at a small indent ("--flag TEXT=default  text")
and lines indented further continue its description; other text at column
0 after the sections is the command's footer.
"""

import re
import subprocess
import sys

DESC_INDENT = 16  # entries start left of this column, descriptions right of it
SKIP = {"-h,--help", "--help-all", "--help"}


def roff(text):
    """Escapes plain text for roff (backslashes, hyphens, a leading dot)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def run_help(binary, path):
    p = subprocess.run([binary] + path + ["--help"], capture_output=True, text=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    if p.returncode != 0:
        raise SystemExit("gen-man: %s --help exited %d: %s"
                         % (" ".join(["triggers"] + path), p.returncode, p.stderr))
    return p.stdout


def parse(text):
    """Returns (summary, usage, {section: [(head, description)]})."""
    summary, usage, sections, section = [], "", {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("Usage:"):
            usage = line[len("Usage:"):].strip()
            continue
        m = re.match(r"^(\S[^:]*):\s*$", line)
        if m and usage:
            section = m.group(1).strip().lower()
            sections[section] = []
            continue
        if section is None:
            if not usage:
                summary.append(line.strip())
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # a footer: a paragraph after the sections
            sections.setdefault("footer", []).append((line.strip(), ""))
            continue
        if indent >= DESC_INDENT and sections[section]:
            head, desc = sections[section][-1]
            sections[section][-1] = (head, (desc + " " + line.strip()).strip())
        else:
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
            head, desc = parts[0], parts[1] if len(parts) > 1 else ""
            if desc.startswith("(Env:"):  # CLI11 2.4: "--flag TEXT [default]  (Env:X)"
                head, desc = head + " " + desc, ""
            sections[section].append((head, desc))
    return " ".join(summary), usage, sections


def walk(binary, path, out):
    """Appends (path, summary, usage, sections) for every command under path."""
    summary, usage, sections = parse(run_help(binary, path))
    # The usage line names the binary as it was called: keep what follows it.
    words = usage.split()
    usage = " ".join(["triggers"] + path + words[1 + len(path):]) if words else ""
    subs = [h for h, _ in sections.get("subcommands", [])]
    if path and not subs:
        out.append((path, summary, usage, sections))
    for name in subs:
        if name != "help":
            walk(binary, path + [name], out)


def render(commands):
    synopsis, body = [], []
    for path, summary, usage, sections in commands:
        synopsis.append(roff(usage) + "\n.br")
        body.append('.SS "%s"' % roff(" ".join(["triggers"] + path)))
        body.append(".B " + roff(usage))
        body.append(".PP\n" + roff(summary[:1].upper() + summary[1:] + "."))
        for name, entries in sections.items():
            if name in ("subcommands", "footer"):
                continue
            for head, desc in entries:
                if head in SKIP:
                    continue
                body.append(".TP\n.B " + roff(head) + "\n" + roff(desc or "(no description)"))
        footer = " ".join(head for head, _ in sections.get("footer", []))
        if footer:
            body.append(".PP\n" + roff(footer))
    return "\n".join(synopsis), "\n".join(body)


def main():
    if len(sys.argv) != 5:
        raise SystemExit("usage: gen-man.py BIN VERSION TEMPLATE OUT")
    binary, version, template, out = sys.argv[1:]
    commands = []
    walk(binary, [], commands)
    if not commands:
        raise SystemExit("gen-man: no subcommands found in the help of " + binary)
    synopsis, body = render(commands)
    with open(template) as f:
        page = f.read()
    page = page.replace("@VERSION@", version).replace("@SYNOPSIS@", synopsis)
    page = page.replace("@COMMANDS@", body)
    with open(out, "w") as f:
        f.write(page)


if __name__ == "__main__":
    main()
