#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md (python3 standard library only).

Every relative Markdown link, [text](path) or [text](path#anchor) (also images and reference definitions), must name
an existing file or directory. When it names a .md file with an anchor (or is an anchor alone, #anchor, in its own
file), that file must have a heading whose GitHub-style slug is the anchor, or an explicit <a id="..."> or
<a name="...">. Links with a scheme (http, https, mailto, ...) are not checked; links inside code are not links.

Prints each broken link as file:line and exits 1; prints a one-line summary and exits 0 otherwise.
Usage: scripts/check-links.py [FILE.md ...]   (default: README.md and docs/*.md)
"""
import glob
import os
import re
import sys
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"""<a\s[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n)[\s\S])*?[^`])\1(?!`)")
# [text](target) or [text](<target>), optionally with a title; text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[((?:[^\[\]\\]|\\.|\[[^\[\]]*\])*)\]\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[([^\]]+)\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def blank_code(text):
    """The text with fenced code blocks and code spans replaced by spaces (newlines kept, so offsets and line
    numbers stay those of the file)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append(" " * len(line))
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):].strip():
                fence = None
            out.append(" " * len(line))
        else:
            out.append(line)
    text = "\n".join(out)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def heading_text(raw):
    """What GitHub renders of a heading's inline Markdown: code spans, links and emphasis reduced to their text."""
    s = re.sub(r"(`+)(.+?)\1", lambda m: m.group(2).strip(), raw)
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", s)
    s = re.sub(r"<[^>]+>", "", s)
    s = re.sub(r"(\*{1,3}|(?<!\w)_{1,3}|_{1,3}(?!\w))", "", s)
    return s.strip()


def slug(text):
    """GitHub's heading id: lower case, punctuation removed (letters, digits, '_', '-' and spaces kept), each space
    a hyphen."""
    s = text.lower()
    s = "".join(c for c in s if c.isalnum() or c in "_- ")
    return s.replace(" ", "-")


_anchor_cache = {}


def anchors_of(path):
    """Every anchor a Markdown file offers: heading slugs (repeats numbered -1, -2, ... as GitHub does) and explicit
    <a id>/<a name>."""
    if path in _anchor_cache:
        return _anchor_cache[path]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    code = blank_code(text).split("\n")
    found, seen = set(), {}

    def add_heading(raw):
        base = slug(heading_text(raw))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else "%s-%d" % (base, n))

    for i, line in enumerate(lines):
        if not code[i].strip():  # inside a fenced block
            continue
        m = ATX.match(line)
        if m:
            add_heading(m.group(2) or "")
            continue
        if i > 0 and SETEXT.match(line):
            # a setext heading: the paragraph right above (not a list, table, quote, heading or code) is its text
            j = i
            while j > 0 and lines[j - 1].strip() and code[j - 1].strip() and not ATX.match(lines[j - 1]) \
                    and not lines[j - 1].lstrip().startswith(("- ", "* ", "+ ", "|", ">")):
                j -= 1
            if j < i:
                add_heading(" ".join(l.strip() for l in lines[j:i]))
    for m in HTML_ANCHOR.finditer(blank_code(text)):
        found.add(m.group(1))
    _anchor_cache[path] = found
    return found


def links_of(text):
    """(line number, target) of every link outside code."""
    clean = blank_code(text)
    for m in INLINE_LINK.finditer(clean):
        yield clean.count("\n", 0, m.start()) + 1, m.group(2)
    for m in REF_DEF.finditer(clean):
        yield clean.count("\n", 0, m.start()) + 1, m.group(2)


def check(md_path):
    """Broken links of one file: (line, target, why)."""
    with open(md_path, encoding="utf-8") as f:
        text = f.read()
    broken, count = [], 0
    for line, target in links_of(text):
        target = target.strip()
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1].strip()
        if not target or SCHEME.match(target):
            continue
        count += 1
        path_part, _, anchor = target.partition("#")
        path_part = urllib.parse.unquote(path_part)
        if path_part:
            base = ROOT if path_part.startswith("/") else os.path.dirname(md_path)
            dest = os.path.normpath(os.path.join(base, path_part.lstrip("/")))
        else:
            dest = md_path
        if not os.path.exists(dest):
            broken.append((line, target, "no such file: %s" % os.path.relpath(dest, ROOT)))
            continue
        if anchor and dest.endswith(".md") and os.path.isfile(dest):
            anchor = urllib.parse.unquote(anchor)
            if anchor not in anchors_of(dest):
                broken.append((line, target, "no heading or <a id> '%s' in %s" % (anchor, os.path.relpath(dest, ROOT))))
    return broken, count


def main(argv):
    files = argv[1:] or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files = [os.path.abspath(f) for f in files]
    total, broken_total = 0, 0
    for md in files:
        broken, count = check(md)
        total += count
        for line, target, why in broken:
            print("%s:%d: broken link (%s): %s" % (os.path.relpath(md, ROOT), line, target, why))
        broken_total += len(broken)
    if broken_total:
        print("check-links: %d broken of %d relative links in %d files" % (broken_total, total, len(files)))
        return 1
    print("check-links: %d relative links in %d files, all resolve" % (total, len(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
