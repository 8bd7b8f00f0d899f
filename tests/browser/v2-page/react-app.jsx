// A small chat page on @langchain/react's useStream (protocol v2 only), for the browser tests. The API url and
// assistant come from the query string; the thread id is kept in sessionStorage so a reload rejoins the thread.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/react";

const params = new URLSearchParams(location.search);
const apiUrl = params.get("api");
const assistantId = params.get("assistant") ?? "typing";

function text(message) {
  const content = message.content;
  if (typeof content === "string") return content;
  return (content ?? []).map((block) => (block.type === "text" ? block.text : "")).join("");
}

function App() {
  const [threadId, setThreadId] = useState(sessionStorage.getItem("threadId"));
  const stream = useStream({
    apiUrl,
    assistantId,
    threadId,
    onThreadId: (id) => {
      sessionStorage.setItem("threadId", id);
      setThreadId(id);
    },
  });
  window.chat = {
    send: (content) => stream.submit({ messages: [{ role: "user", content }] }),
    start: (input) => stream.submit(input),
    respond: (value) => stream.respond(value),
  };
  return (
    <main>
      <p id="status">{stream.isLoading ? "loading" : "idle"}</p>
      <p id="thread">{threadId ?? ""}</p>
      <ol id="messages">
        {stream.messages.map((message, i) => (
          <li key={message.id ?? i} data-type={message.type ?? message._getType?.()}>
            {text(message)}
          </li>
        ))}
      </ol>
      {stream.interrupt ? <p id="interrupt">{JSON.stringify(stream.interrupt.value)}</p> : null}
      {stream.error ? <p id="error">{String(stream.error?.message ?? stream.error)}</p> : null}
      <pre id="values">{JSON.stringify(stream.values ?? {})}</pre>
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
