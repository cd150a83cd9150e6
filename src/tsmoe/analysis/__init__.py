"""Looking inside trained models: what the gates, the attention and the experts do."""
