from netsleuth.cli import main

main()
