from ratings.answer_style import answer_style, conv_metadata, markdown_counts

ANSWER = """# Title
Some **bold** text and __more bold__.

## Steps
1. first
2. second
- bullet
* another

```python
# not a header
- not a list item
x = "**not bold**"
```
"""


def test_markdown_counts_headers_list_items_and_bold_outside_code():
    assert markdown_counts(ANSWER) == {"headers": 2, "lists": 4, "bold": 2}


def test_plain_text_has_no_markdown():
    assert markdown_counts("Just a sentence with 2. numbers and a - dash.") == {"headers": 0, "lists": 0, "bold": 0}


def test_answer_style_sums_tokens_over_turns_and_reads_only_the_assistant():
    conversation = [
        {"role": "user", "content": "# user header\n**user bold**"},
        {"role": "assistant", "content": "**one**"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "- item"},
    ]
    timings = [{"tokens": 5, "ttft": 0.1}, {"tokens": 7}]
    assert answer_style(conversation, timings) == {"tokens": 12, "headers": 0, "lists": 1, "bold": 1}


def test_answer_style_tolerates_failed_turn_timings():
    assert answer_style([{"role": "assistant", "content": ""}], [{}, {"tokens": None}])["tokens"] == 0


def test_conv_metadata_uses_fastchat_keys():
    meta = conv_metadata([{"role": "assistant", "content": "**x**"}], [], [{"tokens": 3}], [{"tokens": 9}])
    assert meta["sum_assistant_a_tokens"] == 3 and meta["sum_assistant_b_tokens"] == 9
    assert meta["bold_count_a"] == {"total": 1} and meta["bold_count_b"] == {"total": 0}
