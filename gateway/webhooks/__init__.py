"""Webhooks: subscriptions, the event follower (TrainingService.WatchAllEvents) and signed delivery."""
