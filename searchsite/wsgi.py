"""WSGI entry point (under gunicorn: see ``searchsite/gunicorn.conf.py``).

A process that imports this is a web process: it loads the model and every index
now, before it accepts a request, so that no visitor waits for them; and one of
a host's web processes keeps the host's indexes current from the change feed.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from embeddings.index.dense import limit_threads  # noqa: E402
from embeddings.replica import follower_start  # noqa: E402  (needs the apps loaded)
from faq.search import search_warm_up  # noqa: E402

# Raises ImproperlyConfigured now if it is empty, not at the first signed cookie.
_ = settings.SECRET_KEY
# A web process searches one query at a time, which FAISS runs on one thread
# whatever its pool: the pool's other threads only wake to spin, against the
# model's (a worker with a two-thread model on two cores: encode + exact search of
# 100,000 vectors 16.9 ms with FAISS's two threads, 7.6 ms with one).
limit_threads(1)
search_warm_up()
follower_start()  # with INDEX_FOLLOW: this host's indexes follow the change feed
# Everything loaded so far lives as long as the process: leave it out of the
# collector's full passes, which otherwise stall a request every few hundred.
gc.freeze()
