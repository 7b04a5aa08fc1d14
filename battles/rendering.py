"""Answers as Markdown, rendered safely: raw HTML is never passed through, and the output is sanitised."""

import nh3
from markdown_it import MarkdownIt

# "html": False makes markdown-it escape any HTML in the answer; nh3 then removes anything unsafe that
# Markdown itself can produce (javascript: links, odd attributes).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}, "th": {"style"}, "td": {"style"}}


def markdown_to_safe_html(text: str) -> str:
    tokens = _markdown.parse(text)
    for token in tokens:
        # An answer sits under the page's h1 and its column's h2: its own "# Title" starts at h3, so that a
        # screen reader's list of headings keeps the page's outline.
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 2)}"
    return nh3.clean(
        _markdown.renderer.render(tokens, _markdown.options, {}),
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow noopener noreferrer",
    )
