from netsleuth.cliutil import entry

entry()
