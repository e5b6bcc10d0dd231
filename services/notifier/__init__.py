"""The notifier: incidents, the status page, outbound alerts."""
