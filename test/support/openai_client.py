"""Runs the official openai Python package against a ragline server and prints what it saw as one JSON line.

usage: python openai_client.py BASE_URL API_KEY SCENARIO
"""

import json
import sys

import openai

base_url, api_key, scenario = sys.argv[1:4]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
QUESTION = [{"role": "user", "content": "What are the API rate limits?"}]


def annotations_of(items):
    return [
        {
            "type": a.type,
            "url": a.url_citation.url,
            "title": a.url_citation.title,
            "start_index": a.url_citation.start_index,
            "end_index": a.url_citation.end_index,
        }
        for a in items or []
    ]


def error_of(call):
    try:
        call()
    except openai.APIStatusError as error:
        return {"status": error.status_code, "message": error.message, "class": type(error).__name__}
    return {"status": None}


if scenario == "complete":
    completion = client.chat.completions.create(model="ragline", messages=QUESTION)
    message = completion.choices[0].message
    out = {
        "id": completion.id,
        "content": message.content,
        "annotations": annotations_of(message.annotations),
        "ragline": (completion.model_extra or {}).get("ragline"),
        "models": [m.id for m in client.models.list().data],
    }
elif scenario == "stream":
    shown, annotations, ragline, usage = "", [], None, None
    stream = client.chat.completions.create(
        model="ragline",
        messages=[{"role": "user", "content": "How are API requests limited per key?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        extra = (chunk.model_extra or {}).get("ragline") or {}
        if extra.get("reset"):
            shown = ""
        if "answer" in extra:
            ragline = extra
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            shown += choice.delta.content or ""
            annotations = (choice.delta.model_extra or {}).get("annotations") or annotations
    out = {"content": shown, "annotations": annotations, "ragline": ragline, "usage": usage}
elif scenario == "follow-up":
    completion = client.chat.completions.create(
        model="ragline",
        messages=[
            {"role": "user", "content": "How do I reset my password?"},
            {"role": "assistant", "content": "Use the reset link on the sign-in page [1]."},
            {"role": "user", "content": "And how long is that link valid?"},
        ],
    )
    out = {"ragline": (completion.model_extra or {}).get("ragline")}
elif scenario == "errors":
    big = [{"role": "user", "content": "x" * 60000}]
    out = {
        "unsupported": error_of(lambda: client.chat.completions.create(model="ragline", messages=QUESTION, n=2)),
        "oversized": error_of(lambda: client.chat.completions.create(model="ragline", messages=big)),
        "tools": error_of(
            lambda: client.chat.completions.create(
                model="ragline",
                messages=QUESTION,
                tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
            )
        ),
    }
else:
    raise SystemExit(f"unknown scenario {scenario}")
print(json.dumps(out))
