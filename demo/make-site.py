#!/usr/bin/env python3
"""Build demo/site.zip from demo/site/, deterministically, and check its links.

    python3 demo/make-site.py           # check the site, (re)write demo/site.zip
    python3 demo/make-site.py --check   # check the site and that demo/site.zip is up to date

Archive layout:
  - entries in sorted order, one directory entry per directory (css/, docs/, img/);
  - text (.html .css .svg .txt .json .js) ZIP_DEFLATED at level 9; images (.png .jpg) ZIP_STORED,
    as they are already compressed;
  - every entry dated 2024-01-02 03:04:06 (DOS time has 2-second resolution, so the seconds are
    even), made on Unix (create_system 3), mode 0644 for files and 0755 for directories, with no
    extra fields and no comment. The same input gives the same bytes, as long as zlib deflates the
    same way (it does across stock zlib releases at a fixed level).

The build fails (exit 1, nothing written) when:
  - a file has a suffix outside the whitelist (dotfiles and editor leftovers included);
  - an HTML page has unbalanced tags, a duplicate id or an <img> without alt;
  - an href/src/srcset/poster/action (HTML) or url()/@import (CSS, style attributes) is absolute or
    external (scheme, //host or /path: the site must work offline and under any mount path), escapes
    the site, points to an entry that is not in the archive, names a directory without the trailing
    slash, or has a #fragment that is not an id of the target page;
  - an SVG is not well-formed XML;
  - a file is not reachable by links from index.html;
  - the archive is not byte-identical when built twice, or is 200 KB or more.
"""
import io
import os
import posixpath
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
SITE = os.path.join(HERE, "site")
OUT = os.path.join(HERE, "site.zip")

DATE_TIME = (2024, 1, 2, 3, 4, 6)
DEFLATED = {".html", ".css", ".svg", ".txt", ".json", ".js"}
STORED = {".png", ".jpg"}
MAX_SIZE = 200 * 1024

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
URL_ATTRS = {"href", "src", "poster", "action", "data"}
CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s]*))\s*\)|@import\s+(?:"([^"]*)"|'([^']*)')""")


class Errors(list):
    def add(self, where, message):
        self.append(f"{where}: {message}")


# ---------------------------------------------------------------- collecting the files

def collect():
    """Return (files {name: bytes}, dirs [name/]) with '/'-separated names relative to SITE."""
    files, dirs, errors = {}, [], Errors()
    for root, subdirs, names in os.walk(SITE):
        subdirs.sort()
        rel = os.path.relpath(root, SITE).replace(os.sep, "/")
        if rel != ".":
            dirs.append(rel + "/")
        for name in sorted(names):
            path = rel + "/" + name if rel != "." else name
            suffix = os.path.splitext(name)[1].lower()
            if name.startswith(".") or (suffix not in DEFLATED and suffix not in STORED):
                errors.add(path, f"suffix {suffix or '(none)'} is not in the whitelist "
                                 f"{' '.join(sorted(DEFLATED | STORED))}")
                continue
            with open(os.path.join(root, name), "rb") as f:
                files[path] = f.read()
    return files, dirs, errors


# ---------------------------------------------------------------- parsing pages

class Page(HTMLParser):
    def __init__(self, name, errors):
        super().__init__(convert_charrefs=True)
        self.name, self.errors = name, errors
        self.refs = []        # (attribute, url)
        self.ids = set()
        self.stack = []

    def where(self):
        return f"{self.name}:{self.getpos()[0]}"

    def handle_starttag(self, tag, attrs):
        self.attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_startendtag(self, tag, attrs):
        self.attrs(tag, attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.add(self.where(), f"</{tag}> closes a void element")
        elif not self.stack or self.stack[-1][0] != tag:
            open_tag = f"<{self.stack[-1][0]}> from line {self.stack[-1][1]}" if self.stack else "nothing"
            self.errors.add(self.where(), f"</{tag}> does not match {open_tag}")
        else:
            self.stack.pop()

    def attrs(self, tag, attrs):
        seen = dict(attrs)
        if tag == "img" and "alt" not in seen:
            self.errors.add(self.where(), "<img> without alt")
        for key, value in attrs:
            value = value or ""
            if key == "id":
                if value in self.ids:
                    self.errors.add(self.where(), f'duplicate id "{value}"')
                self.ids.add(value)
            elif key in URL_ATTRS and not (tag == "object" and key != "data"):
                self.refs.append((self.getpos()[0], f"{tag} {key}", value.strip()))
            elif key == "srcset":
                for candidate in value.split(","):
                    if candidate.strip():
                        self.refs.append((self.getpos()[0], f"{tag} srcset", candidate.split()[0]))
            elif key == "style":
                for url in css_urls(value):
                    self.refs.append((self.getpos()[0], f"{tag} style url()", url))

    def close(self):
        super().close()
        for tag, line in self.stack:
            self.errors.add(f"{self.name}:{line}", f"<{tag}> is never closed")


def css_urls(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return [next(g for g in m.groups() if g is not None) for m in CSS_URL.finditer(text)]


# ---------------------------------------------------------------- checking links

def resolve(base, url, names, dirs):
    """Entry a relative URL on page `base` points to, and its fragment; raises ValueError why not."""
    parts = urlsplit(url)
    if url == "":
        raise ValueError("empty URL")
    if parts.scheme or parts.netloc:
        raise ValueError("external URL (the site must work offline)")
    if parts.path.startswith("/"):
        raise ValueError("absolute path (use a relative link so any mount path works)")
    path = unquote(parts.path)
    if path == "":
        return base, parts.fragment  # "#frag" or "?q": this page
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), path))
    if joined == ".." or joined.startswith("../"):
        raise ValueError("leaves the site")
    if joined == ".":
        joined = ""
    wants_dir = path.endswith("/") or path in (".", "..") or path.endswith("/.") or path.endswith("/..")
    if wants_dir or joined + "/" in dirs or joined == "":
        if not wants_dir:
            raise ValueError(f"{joined}/ is a directory: link to it with a trailing slash")
        prefix = joined + "/" if joined else ""
        if prefix and prefix not in dirs:
            raise ValueError(f"no directory {prefix} in the archive")
        joined = prefix + "index.html"
    if joined not in names:
        raise ValueError(f"no entry {joined} in the archive")
    return joined, parts.fragment


def check(files, dirs, errors):
    pages, links = {}, {name: set() for name in files}
    for name, data in files.items():
        if name.endswith(".html"):
            page = Page(name, errors)
            try:
                page.feed(data.decode("utf-8"))
                page.close()
            except UnicodeDecodeError as e:
                errors.add(name, f"not UTF-8: {e}")
            pages[name] = page
        elif name.endswith(".svg"):
            try:
                ET.fromstring(data)
            except ET.ParseError as e:
                errors.add(name, f"not well-formed XML: {e}")
    refs = [(name, line, what, url) for name, page in pages.items() for line, what, url in page.refs]
    for name, data in files.items():
        if name.endswith(".css"):
            text = data.decode("utf-8")
            for url in css_urls(text):
                refs.append((name, 0, "css url()", url))
    for name, line, what, url in refs:
        where = f"{name}:{line}" if line else name
        try:
            target, fragment = resolve(name, url, files, dirs)
        except ValueError as e:
            errors.add(where, f'{what}="{url}": {e}')
            continue
        if fragment and target in pages and fragment not in pages[target].ids:
            errors.add(where, f'{what}="{url}": no id "{fragment}" in {target}')
        links[name].add(target)
    # Everything must be reachable from the home page.
    seen, todo = set(), ["index.html"]
    while todo:
        name = todo.pop()
        if name in seen or name not in links:
            continue
        seen.add(name)
        todo.extend(links[name])
    for name in sorted(set(files) - seen):
        errors.add(name, "not reachable by links from index.html")
    return len(refs)


# ---------------------------------------------------------------- writing the archive

def build(files, dirs):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(list(files) + dirs):
            info = zipfile.ZipInfo(name, date_time=DATE_TIME)
            info.create_system = 3  # Unix, so the mode bits below mean what they say
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10  # directory, and the MS-DOS directory bit
                zf.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            else:
                info.external_attr = 0o100644 << 16
                if os.path.splitext(name)[1].lower() in DEFLATED:
                    zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                else:
                    zf.writestr(info, files[name], compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def verify(data, files, dirs, errors):
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if names != sorted(list(files) + dirs):
        errors.add("site.zip", "entries are not the site's files and directories in sorted order")
    bad = zf.testzip()
    if bad is not None:
        errors.add("site.zip", f"CRC check failed for {bad}")
    for i in infos:
        want = zipfile.ZIP_STORED if i.is_dir() or os.path.splitext(i.filename)[1].lower() in STORED \
            else zipfile.ZIP_DEFLATED
        if i.compress_type != want or i.date_time != DATE_TIME or i.extra or i.flag_bits & 0x08:
            errors.add(f"site.zip:{i.filename}", "unexpected method, time, extra field or data descriptor")
        if not i.is_dir() and zf.read(i) != files[i.filename]:
            errors.add(f"site.zip:{i.filename}", "content differs from the source file")
    if data != build(files, dirs):
        errors.add("site.zip", "building twice gave different bytes")
    if len(data) >= MAX_SIZE:
        errors.add("site.zip", f"{len(data)} bytes: keep it under {MAX_SIZE}")
    return infos


def main(argv):
    check_only = "--check" in argv[1:]
    unknown = [a for a in argv[1:] if a != "--check"]
    if unknown:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    files, dirs, errors = collect()
    if "index.html" not in files:
        errors.add("index.html", "missing: the site needs a home page")
    nrefs = check(files, dirs, errors)
    data = build(files, dirs)
    infos = verify(data, files, dirs, errors)
    if errors:
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        print(f"{len(errors)} error(s); {os.path.relpath(OUT)} not written", file=sys.stderr)
        return 1

    for i in infos:
        method = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}[i.compress_type]
        print(f"{i.filename:28} {i.compress_type} {method:8} {i.file_size:7} -> {i.compress_size:7}")
    print(f"{len(files)} files, {len(dirs)} directories, {nrefs} links checked, {len(data)} bytes")

    current = open(OUT, "rb").read() if os.path.exists(OUT) else None
    if check_only:
        if current != data:
            print(f"{os.path.relpath(OUT)} is out of date: run python3 demo/make-site.py", file=sys.stderr)
            return 1
        print(f"{os.path.relpath(OUT)} is up to date")
    elif current == data:
        print(f"{os.path.relpath(OUT)} unchanged")
    else:
        tmp = OUT + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, OUT)
        print(f"wrote {os.path.relpath(OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
