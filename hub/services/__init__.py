"""Domain services over the store's repositories, used by the API and the pages."""
