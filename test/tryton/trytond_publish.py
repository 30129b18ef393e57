"""Publishes through trytond's own code, for the Tryton tests and bench/tryton.

Run with trytond's interpreter (the first line of /usr/bin/trytond):

    python3 trytond_publish.py <trytond.conf> <database>

Reads one JSON object per line on stdin; each is one Tryton transaction:

    {"user": 1, "context": {"client": "<id>"}, "rollback": false,
     "actions": [{"notify": {"title": "t", "body": "b", "user": 1}},
                 {"publish": {"channel": "user:1", "message": {...}}}]}

``publish`` messages are decoded with trytond's JSONDecoder, so ``__class__`` hints
become Python values that trytond encodes back. Answers ``ok`` or ``error <text>`` per line.
"""
import json
import sys

from trytond.config import config

config.update_etc(sys.argv[1])
DATABASE = sys.argv[2]

from trytond.protocols.jsonrpc import JSONDecoder  # noqa: E402
from trytond.transaction import Transaction  # noqa: E402
import trytond.bus  # noqa: E402  (after the config: it reads [bus] class at import)


class Rollback(Exception):
    pass


def run(request):
    try:
        with Transaction().start(
                DATABASE, request.get('user', 0),
                context=request.get('context', {})):
            for action in request['actions']:
                if 'notify' in action:
                    trytond.bus.notify(**action['notify'])
                else:
                    p = action['publish']
                    trytond.bus.Bus.publish(p['channel'], p['message'])
            if request.get('rollback'):
                raise Rollback()
    except Rollback:
        pass


print('ready %s' % trytond.bus.Bus.__module__, flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    try:
        run(json.loads(line, object_hook=JSONDecoder()))
        print('ok', flush=True)
    except Exception as e:  # reported to the test, which fails on it
        print('error %s: %s' % (type(e).__name__, str(e).replace('\n', ' ')),
            flush=True)
