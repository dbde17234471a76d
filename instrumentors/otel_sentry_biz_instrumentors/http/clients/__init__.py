"""Client instrumentors: ``requests``, ``httpx``, ``urllib3`` and ``urllib.request``.

Each wraps the innermost call of its library that still sees the whole request, one level
below the call contrib's instrumentor wraps. So when contrib's is active too, its span is
current when ours runs, and ours enriches it instead of adding a second span:

* requests: ours ``HTTPAdapter.send``; contrib ``Session.send``.
* httpx: ours ``httpcore.ConnectionPool.handle_request`` (and the async pool); contrib
  ``httpx.HTTPTransport.handle_request``.
* urllib3: ours ``HTTPConnectionPool._make_request`` (one span per attempt, as semconv asks);
  contrib ``HTTPConnectionPool.urlopen``.
* urllib.request: ours ``AbstractHTTPHandler.do_open``; contrib ``OpenerDirector.open``.

Importing this package imports none of those libraries: each module imports its library in
``_instrument``.
"""
