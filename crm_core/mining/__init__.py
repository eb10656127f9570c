"""Frequent itemsets and association rules mined from baskets of orders."""
