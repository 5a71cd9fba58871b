"""The programme dashboard (issue 17): a web page behind a login for the programme team and
teachers. Its own process (``make dashboard``), never on the conversation path.

``config``    settings from the environment (refuses a production start without a secret key)
``db``        engines (a read-only role for learner data), the dashboard's own tables, prepare
``accounts``  users, roles, password hashes, login rate limiting
``security``  signed session cookies and CSRF tokens
``queries``   what each page shows (classes, learners, the overview from infra/analytics.py)
``charts``    server-side SVG charts (matplotlib)
``app``       the Sanic web app
"""
