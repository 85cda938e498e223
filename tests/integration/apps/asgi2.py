"""ASGI 2 ("double callable") apps."""


class ClassApp:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] != "http":
            raise ValueError("http only")
        body = ("asgi2-class " + self.scope["path"]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def function_app(scope):
    if scope["type"] != "http":
        raise ValueError("http only")

    async def instance(receive, send):
        body = ("asgi2-function " + scope["path"]).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return instance
