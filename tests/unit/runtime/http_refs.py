"""Frame a byte stream with the reference parsers (httptools = llhttp, h11) the way ours does:
(messages, outcome), each message (method, target, body). Test-only: both are test extras."""

from __future__ import annotations

from typing import Any

Message = tuple[str, str, bytes]


def llhttp(stream: bytes, split: int = 0) -> tuple[list[Message], str]:
    """outcome: "ok" (no error), "error", or "upgrade" (llhttp stopped parsing HTTP there)."""
    import httptools

    messages: list[Message] = []
    current: dict[str, Any] = {}

    class Callbacks:
        def on_message_begin(self) -> None:
            current.clear()
            current.update(url=b"", body=b"")

        def on_url(self, url: bytes) -> None:
            current["url"] += url

        def on_headers_complete(self) -> None:
            current["method"] = parser.get_method().decode("latin-1")

        def on_body(self, body: bytes) -> None:
            current["body"] += body

        def on_message_complete(self) -> None:
            messages.append((current["method"], current["url"].decode("latin-1"), current["body"]))

    parser = httptools.HttpRequestParser(Callbacks())
    pieces = [stream[i:i + split] for i in range(0, len(stream), split)] if split else [stream]
    try:
        for piece in pieces:
            parser.feed_data(piece)
    except httptools.HttpParserUpgrade:
        return messages, "upgrade"
    except httptools.HttpParserError:
        return messages, "error"
    return messages, "ok"


def h11_frame(stream: bytes) -> tuple[list[Message], str]:
    """outcome: "ok" or "error"; h11 answers each request (204) to move on to the next one."""
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(stream)
    messages: list[Message] = []
    method = target = ""
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return messages, "ok"
            if isinstance(event, h11.Request):
                method, target, body = event.method.decode("latin-1"), event.target.decode("latin-1"), b""
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                messages.append((method, target, body))
                conn.send(h11.Response(status_code=204, headers=[]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is h11.MUST_CLOSE:
                    return messages, "ok"
                conn.start_next_cycle()
    except h11.RemoteProtocolError:
        return messages, "error"
