"""Discovery Engine v1 (Vertex AI Search) for the loopback cloud."""
