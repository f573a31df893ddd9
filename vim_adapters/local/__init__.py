"""The local lab VIM: network namespaces, Linux bridges, the real CNI plugins and processes."""
