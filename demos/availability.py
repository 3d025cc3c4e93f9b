"""A notice at the top of a tab that names each of its models that cannot be used, and how to make it,
shown when the page loads: before anyone clicks, not only in the error of a request."""

import gradio as gr

from demos.model_store import ModelStore


def availability_notice(models: ModelStore, titles: dict[str, str]) -> str:
    """Markdown naming every unavailable model of ``titles`` (checkpoint -> title) with its problem; "" if none."""
    problems = [f"- **{title}**: {problem}" for name, title in titles.items() if (problem := models.problem(name))]
    if not problems:
        return ""
    return "\n".join(["⚠️ **Not available here** (a request that needs one answers with its message):", *problems])


def build_availability_notice(models: ModelStore, titles: dict[str, str]) -> None:
    notice = gr.Markdown(visible=False, elem_classes="availability-notice")

    def refresh():
        text = availability_notice(models, titles)
        return gr.Markdown(text, visible=bool(text))

    gr.on(None, refresh, outputs=notice, api_visibility="private", show_progress="hidden")
