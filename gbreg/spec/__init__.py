"""The study spec: YAML loaded safely, validated with pydantic, resolved to each library's names."""
