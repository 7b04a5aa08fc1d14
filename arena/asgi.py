"""ASGI entry point: HTTP through Django, WebSockets through Channels with the request's cookies.

The battle socket reads the visitor's session itself (battles/visitors.session_key_issued) rather than
through Channels' session middleware, which checks the session for changes on every frame sent (2% of a
busy web process's CPU) for a socket that never changes it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402

from arena.body_limit import BodyLimit  # noqa: E402
from arena.routing import websocket_urlpatterns  # noqa: E402
from arena.socket_limit import SocketsPerAddress  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(django_asgi_app),
        "websocket": SocketsPerAddress(AllowedHostsOriginValidator(CookieMiddleware(URLRouter(websocket_urlpatterns)))),
    }
)
