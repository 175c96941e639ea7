"""INT_R02 conformance: the ANS test kit's regulator-account checks (flux v1) ported against the strict
vendor simulator, and the bodies the platform's own client sends, captured by that strict server."""
