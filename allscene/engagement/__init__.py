"""Engagement: interactive campaigns (draws, red envelopes, coupons, codes, points, badges, contests) and their ledgers."""
