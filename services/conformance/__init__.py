"""The agency conformance kit: `chakong conform` drives an agency endpoint, in any language, through the contract."""
