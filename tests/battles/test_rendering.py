from battles.rendering import markdown_to_safe_html


def test_markdown_is_rendered():
    html = markdown_to_safe_html("# Title\n\n- **bold** item\n\n```\ncode\n```")
    assert "<h3>Title</h3>" in html  # under the page's h1 and the column's h2
    assert "<strong>bold</strong>" in html
    assert "<pre><code>code" in html


def test_script_and_raw_html_never_get_through():
    html = markdown_to_safe_html('<script>alert(1)</script><img src=x onerror="alert(2)"><b>raw</b>')
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html  # shown as text, harmlessly


def test_javascript_links_are_removed():
    html = markdown_to_safe_html("[click](javascript:alert(1)) and [ok](https://example.com)")
    assert 'href="javascript' not in html
    assert 'href="https://example.com"' in html
