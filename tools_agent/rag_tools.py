"""One search tool per RAG collection on a LangConnect-compatible service, called with the user's token.

The collection's name and description (`GET {rag_url}/collections/{id}`) name and describe the tool, so a
missing collection or a refused token ends the run with a clear error when the graph is built. A failed search
becomes an error tool message for the model (`ToolException`), never a hang: every request has a timeout.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from tools_agent.config import RagConfig, env_seconds

SEARCH_LIMIT = 10


class SearchArgs(BaseModel):
    query: str = Field(description="The search query to find relevant documents")


def tool_name(name: str, taken: set[str]) -> str:
    """A name OpenAI accepts (`[a-zA-Z0-9_-]{1,64}`), unique among this run's tools."""
    base = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_")[:56] or "collection"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def format_documents(documents: list[dict[str, Any]]) -> str:
    """The LangConnect search results as the tagged text the Open Agent Platform agent gives its model."""
    parts = ["<all-documents>"]
    for doc in documents:
        parts.append(f'  <document id="{doc.get("id", "unknown")}">\n    {doc.get("page_content", "")}\n  </document>')
    parts.append("</all-documents>")
    return "\n".join(parts)


def _http_detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json()
    except ValueError:
        detail = resp.text[:200]
    if isinstance(detail, dict):
        detail = detail.get("detail") or detail.get("message") or detail
    return f"HTTP {resp.status_code}: {detail}"


async def _collection_info(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        resp = await client.get(url)
    except httpx.TimeoutException:
        raise TimeoutError(f"The RAG service did not answer GET {url} within {client.timeout.read}s")
    except httpx.HTTPError as exc:
        raise RuntimeError(f"Could not reach the RAG service at {url}: {type(exc).__name__}: {exc}")
    if resp.status_code != 200:
        raise RuntimeError(f"The RAG service refused GET {url} ({_http_detail(resp)})")
    data = resp.json()
    if not isinstance(data, dict):
        raise RuntimeError(f"The RAG service answered GET {url} with {type(data).__name__}, expected an object")
    return data


def _search_tool(name: str, description: str, search_url: str, token: str | None, timeout: float) -> BaseTool:
    async def search(query: str) -> str:
        try:
            async with httpx.AsyncClient(timeout=timeout, headers=_headers(token)) as client:
                resp = await client.post(search_url, json={"query": query, "limit": SEARCH_LIMIT})
        except httpx.TimeoutException:
            raise ToolException(f"The RAG search at {search_url} did not answer within {timeout:g}s")
        except httpx.HTTPError as exc:
            raise ToolException(f"The RAG search at {search_url} failed: {type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            raise ToolException(f"The RAG search at {search_url} failed ({_http_detail(resp)})")
        documents = resp.json()
        if not isinstance(documents, list):
            raise ToolException(f"The RAG search at {search_url} returned {type(documents).__name__}, expected a list")
        return format_documents(documents)

    return StructuredTool.from_function(
        coroutine=search, name=name, description=description, args_schema=SearchArgs, handle_tool_error=True
    )


async def load_rag_tools(config: RagConfig, token: str | None, taken: set[str]) -> list[BaseTool]:
    """A search tool for each configured collection."""
    if not config.rag_url or not config.collections:
        return []
    base = config.rag_url.rstrip("/")
    timeout = env_seconds("TOOLS_AGENT_HTTP_TIMEOUT", 10.0)
    tools: list[BaseTool] = []
    async with httpx.AsyncClient(timeout=timeout, headers=_headers(token)) as client:
        for collection_id in config.collections:
            info = await _collection_info(client, f"{base}/collections/{collection_id}")
            label = str(info.get("name") or f"collection_{collection_id}")
            about = (info.get("metadata") or {}).get("description") if isinstance(info.get("metadata"), dict) else None
            description = f"Search the '{label}' document collection and return the most relevant documents." + (
                f" It contains: {about}" if about else ""
            )
            search_url = f"{base}/collections/{collection_id}/documents/search"
            tools.append(_search_tool(tool_name(label, taken), description, search_url, token, timeout))
    return tools
