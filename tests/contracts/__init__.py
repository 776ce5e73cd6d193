"""Contract checks on the test suite's traffic (checker.py).

``asyncapi-3.0.0.schema.json`` is the AsyncAPI 3.0.0 specification's JSON
Schema, copied unchanged from the npm package ``@asyncapi/specs`` 6.11.1
(``schemas/3.0.0-without-$id.json``; Apache-2.0, see asyncapi-specs.LICENSE
and asyncapi-specs.NOTICE). tests/unit/test_contracts.py validates
pushsvc/contracts/asyncapi.yaml with it, offline: no Python package ships an
AsyncAPI 3 validator.
"""
