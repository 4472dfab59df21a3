package demo

// article is one of the demo pack's articles: its manifest fields and the
// body of its <article> element. The texts were written for the project and
// are published under CC BY 4.0.
type article struct {
	id          string
	title       string
	description string
	levels      []string
	subjects    []string
	thumbnail   string   // path of the item's thumbnail
	images      []string // other pack files the article refers to
	body        string   // HTML inside <article>, after the <h1>
}

// articles lists the demo articles in manifest order.
func articles() []article {
	return []article{
		{
			id:          "cycle-de-l-eau",
			title:       "Le cycle de l'eau",
			description: "D'où vient la pluie et où va-t-elle ? Évaporation, condensation, précipitations, ruissellement et infiltration expliqués simplement.",
			levels:      []string{"cycle3"},
			subjects:    []string{"sciences"},
			thumbnail:   "images/vignette-eau.png",
			body: `<p>L'eau de la Terre ne disparaît jamais : elle circule sans cesse entre l'océan, l'air et le sol. Ce grand voyage s'appelle le <strong>cycle de l'eau</strong>. Son moteur est le Soleil, qui chauffe l'eau, et la gravité, qui la fait retomber et couler.</p>
<h2>1. L'évaporation</h2>
<p>Quand le Soleil chauffe la surface des océans, des lacs et des rivières, une partie de l'eau liquide se transforme en <strong>vapeur d'eau</strong>. Cette vapeur est un gaz invisible qui monte dans l'atmosphère. Les plantes rejettent aussi de la vapeur d'eau par leurs feuilles : c'est la <em>transpiration</em> des végétaux. Une forêt entière « respire » ainsi des tonnes d'eau chaque jour.</p>
<h2>2. La condensation</h2>
<p>Plus on monte en altitude, plus l'air est froid. Au contact de l'air froid, la vapeur d'eau se refroidit et redevient liquide sous forme de minuscules gouttelettes, ou se transforme en petits cristaux de glace. Ces gouttelettes et ces cristaux, rassemblés par milliards, forment les <strong>nuages</strong>. Tu peux observer la condensation chez toi : la buée qui se dépose sur un miroir froid après une douche chaude, c'est de la vapeur qui redevient liquide.</p>
<h2>3. Les précipitations</h2>
<p>Dans le nuage, les gouttelettes se rencontrent et grossissent. Quand elles deviennent trop lourdes pour rester en l'air, elles tombent : ce sont les <strong>précipitations</strong>. Selon la température, l'eau tombe sous forme de pluie, de neige ou de grêle.</p>
<h2>4. Le ruissellement et l'infiltration</h2>
<p>Une fois au sol, l'eau suit deux chemins. Une partie <strong>ruisselle</strong> à la surface : elle forme des ruisseaux qui rejoignent les rivières, puis les fleuves, qui se jettent dans la mer. Une autre partie <strong>s'infiltre</strong> dans le sol, traverse les roches perméables et s'accumule dans des réserves souterraines appelées <em>nappes phréatiques</em>. Cette eau ressort parfois plus loin sous forme de source. En montagne, la neige et les glaciers gardent l'eau pendant des mois, parfois des siècles, avant de fondre.</p>
<h2>Une eau précieuse</h2>
<p>Presque toute l'eau de la Terre (environ 97 %) est salée et se trouve dans les océans. L'eau douce ne représente qu'une petite part, et la plus grande partie de cette eau douce est gelée dans les glaces des pôles et les glaciers. L'eau que nous buvons provient des rivières, des lacs et des nappes souterraines : elle est rare, il faut la protéger de la pollution et ne pas la gaspiller.</p>
<h2>Retenir</h2>
<ul>
<li>L'eau change d'état : liquide, gaz (vapeur) et solide (glace).</li>
<li>Le cycle de l'eau enchaîne évaporation, condensation, précipitations, ruissellement et infiltration.</li>
<li>La quantité totale d'eau sur Terre reste la même : c'est toujours la même eau qui circule.</li>
</ul>
<p><strong>Petite expérience :</strong> pose un saladier d'eau au soleil, couvre-le d'un film transparent et place un glaçon sur le film. Au bout d'une heure, observe les gouttes sous le film : tu as fabriqué un petit cycle de l'eau.</p>`,
		},
		{
			id:          "fractions-au-quotidien",
			title:       "Les fractions au quotidien",
			description: "Partager une pizza, suivre une recette, lire l'heure : les fractions sont partout. Comprendre, comparer et utiliser les fractions simples.",
			levels:      []string{"cycle3"},
			subjects:    []string{"mathematiques"},
			thumbnail:   "images/vignette-fractions.png",
			body: `<p>Tu utilises des fractions tous les jours, souvent sans le savoir. Une <strong>fraction</strong> sert à décrire une partie d'un tout qui a été partagé en parts égales.</p>
<h2>Lire une fraction</h2>
<p>Dans la fraction 3/4 (on lit « trois quarts »), le nombre du bas, le <strong>dénominateur</strong>, indique en combien de parts égales on a partagé l'unité : ici, 4. Le nombre du haut, le <strong>numérateur</strong>, indique combien de parts on prend : ici, 3. Si une pizza est coupée en 4 parts égales et que tu en manges 3, tu as mangé les trois quarts de la pizza.</p>
<p>On dit : un demi (1/2), un tiers (1/3), un quart (1/4), puis un cinquième, un sixième, un dixième… en ajoutant « -ième » au nombre.</p>
<h2>Des fractions dans la vie de tous les jours</h2>
<ul>
<li><strong>L'heure :</strong> un quart d'heure, c'est 1/4 d'une heure, donc 15 minutes ; une demi-heure, c'est 1/2 heure, donc 30 minutes ; trois quarts d'heure font 45 minutes.</li>
<li><strong>La cuisine :</strong> une recette demande un demi-litre de lait, c'est-à-dire 1/2 litre, soit 50 centilitres.</li>
<li><strong>Le partage :</strong> si quatre amis se partagent équitablement 2 tablettes de chocolat, chacun reçoit 2/4 de tablette, c'est-à-dire une demi-tablette.</li>
<li><strong>Les soldes :</strong> « un quart du prix en moins » sur un jeu à 40 euros, c'est 10 euros de réduction.</li>
</ul>
<h2>Des fractions égales</h2>
<p>Coupe une feuille en deux et colorie une moitié. Coupe maintenant chaque moitié en deux : la feuille a 4 parts et tu en as colorié 2. La surface coloriée n'a pas changé : 1/2 = 2/4. De la même façon, 1/2 = 3/6 = 5/10. Quand on multiplie le numérateur et le dénominateur par le même nombre, on obtient une fraction égale.</p>
<h2>Comparer des fractions</h2>
<p>Si deux fractions ont le même dénominateur, la plus grande est celle qui a le plus grand numérateur : 3/8 est plus grand que 2/8, car on prend plus de parts de même taille. Si elles ont le même numérateur, c'est l'inverse : 1/3 est plus grand que 1/4, car en partageant en 3 parts, chaque part est plus grande qu'en partageant en 4. Une fraction est plus petite que 1 quand son numérateur est plus petit que son dénominateur ; elle est égale à 1 quand ils sont égaux (4/4 = 1).</p>
<h2>Fractions décimales</h2>
<p>Les fractions dont le dénominateur est 10, 100 ou 1 000 s'appellent des fractions décimales. Elles s'écrivent aussi avec une virgule : 3/10 = 0,3 et 25/100 = 0,25. C'est pour cela qu'un quart d'euro vaut 25 centimes.</p>
<h2>À toi de jouer</h2>
<p>Une tarte est coupée en 8 parts égales. Léa en mange 2 et Tom en mange 3. Quelle fraction de la tarte reste-t-il ? (Réponse : il reste 3/8 de la tarte.)</p>
<p>Pour t'entraîner, télécharge la fiche d'exercices « Les fractions » : elle contient son corrigé.</p>`,
		},
		{
			id:          "jules-verne",
			title:       "Jules Verne, un écrivain voyageur",
			description: "La vie et les romans de Jules Verne, l'auteur du Tour du monde en quatre-vingts jours et de Vingt mille lieues sous les mers.",
			levels:      []string{"cycle3", "cycle4"},
			subjects:    []string{"francais"},
			thumbnail:   "images/vignette-jules-verne.png",
			body: `<p>Jules Verne est l'un des écrivains français les plus lus et les plus traduits au monde. Ses romans d'aventures entraînent le lecteur sous les mers, au centre de la Terre, dans les airs et jusqu'autour de la Lune.</p>
<h2>Une enfance au bord de l'eau</h2>
<p>Jules Verne naît le 8 février 1828 à Nantes, un grand port sur la Loire. Enfant, il regarde partir les navires vers des pays lointains et rêve de voyages. Son père, avocat, veut qu'il suive le même métier : le jeune homme part donc étudier le droit à Paris. Mais ce qui l'intéresse vraiment, c'est l'écriture. Il écrit des pièces de théâtre, fréquente les bibliothèques et lit avec passion les découvertes des savants et les récits des explorateurs.</p>
<h2>Les « Voyages extraordinaires »</h2>
<p>En 1863, l'éditeur Pierre-Jules Hetzel publie <cite>Cinq semaines en ballon</cite>. Le succès est immédiat. Hetzel propose alors à Jules Verne d'écrire régulièrement des romans qui mêlent aventure et connaissances scientifiques : ce sera la série des <strong>Voyages extraordinaires</strong>, qui compte plus de soixante romans. Parmi les plus célèbres :</p>
<ul>
<li><cite>Voyage au centre de la Terre</cite> (1864) : le professeur Lidenbrock descend dans un volcan éteint d'Islande ;</li>
<li><cite>De la Terre à la Lune</cite> (1865) : des passionnés construisent un canon géant pour envoyer un obus habité vers la Lune ;</li>
<li><cite>Vingt mille lieues sous les mers</cite> (1869-1870) : le mystérieux capitaine Nemo parcourt les océans à bord de son sous-marin, le Nautilus ;</li>
<li><cite>Le Tour du monde en quatre-vingts jours</cite> (1872) : le flegmatique Phileas Fogg et son domestique Passepartout font le pari de revenir à Londres en quatre-vingts jours ;</li>
<li><cite>Michel Strogoff</cite> (1876) : un courrier du tsar traverse la Sibérie.</li>
</ul>
<p>Attention au titre <cite>Vingt mille lieues sous les mers</cite> : une lieue mesure environ 4 kilomètres, et les vingt mille lieues sont la distance parcourue par le Nautilus sous la surface, pas la profondeur atteinte !</p>
<h2>Un écrivain qui imagine l'avenir</h2>
<p>Jules Verne se documente beaucoup : il remplit des carnets de notes sur la géographie, la physique et les inventions de son temps. Ses romans décrivent des machines qui n'existent pas encore, ou à peine : sous-marins perfectionnés, engins volants, voyages spatiaux. On le présente souvent comme un prophète, mais il était surtout un lecteur attentif de la science de son époque, qui aimait imaginer jusqu'où elle pourrait aller.</p>
<h2>Amiens et la fin de sa vie</h2>
<p>Jules Verne s'installe à Amiens, où il est élu conseiller municipal. Il navigue aussi sur ses bateaux, tous appelés <em>Saint-Michel</em>. Il meurt à Amiens le 24 mars 1905. Ses livres continuent d'être lus, adaptés au cinéma, en bandes dessinées et en dessins animés.</p>
<h2>Pour aller plus loin</h2>
<p>Choisis un des romans cités. Sur une carte, repère les lieux traversés par les héros. Quels moyens de transport utilisent-ils ? Lesquels existaient vraiment en 1870 ?</p>`,
		},
		{
			id:          "revolution-francaise",
			title:       "La Révolution française en quelques dates",
			description: "De la réunion des états généraux en 1789 au coup d'État de Bonaparte en 1799 : les grandes étapes de la Révolution française.",
			levels:      []string{"cycle4"},
			subjects:    []string{"histoire-geographie", "emc"},
			thumbnail:   "images/vignette-revolution.png",
			body: `<p>En dix ans, de 1789 à 1799, la France passe d'une monarchie absolue, où le roi détient tous les pouvoirs, à une république. Voici les dates qui permettent de comprendre ces bouleversements.</p>
<h2>1789 : la fin de l'Ancien Régime</h2>
<dl>
<dt>5 mai 1789</dt>
<dd>Le roi Louis XVI, qui manque d'argent, réunit les <strong>états généraux</strong> à Versailles : des députés du clergé, de la noblesse et du tiers état (le reste de la population).</dd>
<dt>20 juin 1789</dt>
<dd>Les députés du tiers état, qui se sont proclamés Assemblée nationale, prêtent le <strong>serment du Jeu de paume</strong> : ils jurent de ne pas se séparer avant d'avoir donné une Constitution à la France.</dd>
<dt>14 juillet 1789</dt>
<dd>Le peuple de Paris prend la <strong>Bastille</strong>, une forteresse qui servait de prison et symbolisait le pouvoir arbitraire du roi.</dd>
<dt>Nuit du 4 août 1789</dt>
<dd>L'Assemblée abolit les <strong>privilèges</strong> de la noblesse et du clergé.</dd>
<dt>26 août 1789</dt>
<dd>Elle adopte la <strong>Déclaration des droits de l'homme et du citoyen</strong> : « Les hommes naissent et demeurent libres et égaux en droits. »</dd>
</dl>
<h2>1790-1792 : une monarchie constitutionnelle</h2>
<dl>
<dt>1790</dt>
<dd>La France est découpée en <strong>départements</strong>, qui existent toujours.</dd>
<dt>20-21 juin 1791</dt>
<dd>La famille royale tente de fuir à l'étranger ; elle est arrêtée à <strong>Varennes</strong>. Le peuple perd confiance dans le roi.</dd>
<dt>Septembre 1791</dt>
<dd>La première Constitution fait de la France une monarchie constitutionnelle. La même année, Olympe de Gouges rédige la <em>Déclaration des droits de la femme et de la citoyenne</em>.</dd>
<dt>10 août 1792</dt>
<dd>Les Parisiens prennent le palais des Tuileries : le roi est suspendu.</dd>
</dl>
<h2>1792-1799 : la Première République</h2>
<dl>
<dt>21 septembre 1792</dt>
<dd>La nouvelle assemblée, la <strong>Convention</strong>, élue au suffrage universel masculin, abolit la royauté. Le lendemain devient le premier jour de l'an I de la République.</dd>
<dt>21 janvier 1793</dt>
<dd>Louis XVI, jugé pour trahison, est guillotiné.</dd>
<dt>1793-1794</dt>
<dd>La France est en guerre contre plusieurs pays d'Europe et divisée par une guerre civile. Le gouvernement révolutionnaire instaure la <strong>Terreur</strong> : des milliers de suspects sont exécutés.</dd>
<dt>27 juillet 1794 (9 thermidor an II)</dt>
<dd>Robespierre est renversé puis exécuté : la Terreur prend fin.</dd>
<dt>1795</dt>
<dd>Une nouvelle Constitution confie le pouvoir exécutif à cinq directeurs : c'est le <strong>Directoire</strong>.</dd>
<dt>9 novembre 1799 (18 brumaire an VIII)</dt>
<dd>Le général Napoléon Bonaparte prend le pouvoir par un coup d'État. La Révolution s'achève.</dd>
</dl>
<h2>Ce qui reste aujourd'hui</h2>
<p>La devise « Liberté, Égalité, Fraternité », la Déclaration des droits de l'homme et du citoyen (qui fait partie de notre Constitution), les départements et le système métrique, créé pendant la Révolution pour unifier les mesures, sont des héritages de cette période.</p>`,
		},
		{
			id:          "volcans-d-auvergne",
			title:       "Les volcans d'Auvergne",
			description: "La chaîne des Puys, les monts Dore et le Cantal : comment se sont formés les volcans d'Auvergne et pourquoi on dit qu'ils sont endormis.",
			levels:      []string{"cycle4"},
			subjects:    []string{"svt", "sciences"},
			thumbnail:   "images/vignette-volcans.png",
			body: `<p>Au cœur du Massif central, l'Auvergne abrite le plus grand ensemble de volcans de France métropolitaine. Ils ne crachent plus de lave aujourd'hui, mais leur histoire géologique est récente.</p>
<h2>Trois grands ensembles</h2>
<ul>
<li><strong>Le Cantal</strong> est un très ancien et très grand volcan, actif il y a environ 13 à 3 millions d'années. L'érosion l'a profondément entaillé ; son point culminant est le Plomb du Cantal (1 855 m).</li>
<li><strong>Les monts Dore</strong> ont été actifs il y a environ 3 millions à quelques centaines de milliers d'années. Le puy de Sancy (1 885 m) est le plus haut sommet du Massif central.</li>
<li><strong>La chaîne des Puys</strong>, à l'ouest de Clermont-Ferrand, est la plus jeune : environ quatre-vingts volcans alignés sur une trentaine de kilomètres, formés pour la plupart il y a moins de 100 000 ans. Avec la faille de Limagne, elle est inscrite au patrimoine mondial de l'Unesco depuis 2018.</li>
</ul>
<h2>Des volcans de formes différentes</h2>
<p>La forme d'un volcan dépend surtout de la façon dont le magma arrive en surface.</p>
<ul>
<li>Quand le magma est fluide et riche en gaz, il est projeté en fragments qui retombent autour de la bouche : ils forment un <strong>cône de scories</strong> avec un cratère, comme le puy de Pariou. La lave fluide peut aussi s'écouler en longues coulées.</li>
<li>Quand le magma est très visqueux, il s'écoule mal et s'accumule au-dessus de la bouche : il forme un <strong>dôme</strong> sans cratère, comme le puy de Dôme (1 465 m).</li>
<li>Quand le magma rencontre de l'eau souterraine, l'eau se vaporise brutalement et provoque une explosion qui creuse un large cratère. Rempli d'eau, il devient un lac rond appelé <strong>maar</strong>, comme le lac Pavin ou le gour de Tazenat.</li>
</ul>
<h2>Endormis, pas éteints</h2>
<p>La dernière éruption connue en Auvergne est celle qui a formé le lac Pavin, il y a environ 7 000 ans. À l'échelle géologique, c'est très récent. Sous la région, la température reste élevée et les géologues considèrent que la chaîne des Puys est <strong>endormie</strong> plutôt qu'éteinte : une nouvelle éruption est possible, mais rien n'indique qu'elle soit proche. Les scientifiques surveillent la région.</p>
<h2>Les volcans dans la vie des habitants</h2>
<p>Les roches volcaniques sont très présentes dans la vie quotidienne. La pierre de Volvic, une lave sombre et solide, a servi à construire de nombreux bâtiments, dont la cathédrale de Clermont-Ferrand, qui lui doit sa couleur noire. L'eau de pluie, filtrée lentement par les roches volcaniques, ressort en sources d'eau minérale. Les sols volcaniques, fertiles, portent des prairies où paissent les troupeaux qui donnent les fromages d'Auvergne.</p>
<h2>Retenir</h2>
<p>Un volcan se forme quand du magma, une roche fondue venue des profondeurs, remonte et sort à la surface. Selon la viscosité du magma et la présence d'eau, il donne des coulées, des cônes, des dômes ou des maars.</p>`,
		},
		{
			id:          "systeme-solaire",
			title:       "Le système solaire",
			description: "Le Soleil, les huit planètes et la Lune : un premier voyage dans le système solaire, avec un schéma.",
			levels:      []string{"cycle2", "cycle3"},
			subjects:    []string{"sciences"},
			thumbnail:   "images/vignette-systeme-solaire.png",
			images:      []string{"images/systeme-solaire.png"},
			body: `<p>La Terre, notre planète, fait partie d'une grande famille : le <strong>système solaire</strong>. Au centre se trouve une étoile, le Soleil. Autour de lui tournent huit planètes, des planètes naines, des astéroïdes et des comètes.</p>
<figure>
<img src="../images/systeme-solaire.png" width="800" height="400" alt="Schéma du système solaire : le Soleil à gauche, puis les huit planètes dans l'ordre, Mercure, Vénus, la Terre, Mars, Jupiter, Saturne avec ses anneaux, Uranus et Neptune. Les tailles et les distances ne sont pas à l'échelle.">
<figcaption>Le Soleil et les huit planètes, de la plus proche à la plus éloignée (tailles et distances non respectées).</figcaption>
</figure>
<h2>Le Soleil, notre étoile</h2>
<p>Le Soleil est une énorme boule de gaz très chaude qui produit sa propre lumière. Il est beaucoup plus grand que la Terre : on pourrait y ranger plus d'un million de Terres ! Sa lumière met environ 8 minutes pour arriver jusqu'à nous. Attention : il ne faut jamais regarder le Soleil directement, même avec des lunettes de soleil, car cela abîme les yeux.</p>
<h2>Les huit planètes</h2>
<p>Dans l'ordre, en partant du Soleil, on trouve :</p>
<ol>
<li><strong>Mercure</strong>, la plus petite et la plus proche du Soleil ;</li>
<li><strong>Vénus</strong>, la plus chaude, entourée d'épais nuages ;</li>
<li><strong>la Terre</strong>, la seule planète connue où il y a de la vie et de l'eau liquide en surface ;</li>
<li><strong>Mars</strong>, la planète rouge, couverte de poussière de couleur rouille ;</li>
<li><strong>Jupiter</strong>, la plus grande de toutes ;</li>
<li><strong>Saturne</strong>, célèbre pour ses magnifiques anneaux faits de glace et de roches ;</li>
<li><strong>Uranus</strong>, qui tourne couchée sur le côté ;</li>
<li><strong>Neptune</strong>, la plus lointaine, où soufflent des vents très violents.</li>
</ol>
<p>Les quatre premières sont des planètes <strong>rocheuses</strong>, avec un sol solide. Les quatre suivantes sont des planètes <strong>géantes</strong>, formées surtout de gaz et de glaces. Pour retenir l'ordre, on peut apprendre la phrase : « <em>Mon Vieux, Tu M'as Jeté Sur Une Navette</em> » (la première lettre de chaque mot est celle d'une planète). Pluton, autrefois comptée comme la neuvième planète, est classée depuis 2006 parmi les planètes naines.</p>
<h2>La Terre bouge tout le temps</h2>
<p>La Terre tourne sur elle-même en 24 heures : la moitié tournée vers le Soleil est dans le jour, l'autre moitié est dans la nuit. En même temps, elle fait le tour du Soleil en un an, un peu plus de 365 jours. La <strong>Lune</strong> n'est pas une planète : c'est le satellite naturel de la Terre. Elle tourne autour de nous en un peu moins d'un mois, à environ 384 000 kilomètres.</p>
<h2>Observer</h2>
<p>Par une nuit claire, loin des lumières de la ville, tu peux voir à l'œil nu Vénus, Mars, Jupiter et Saturne. Elles ressemblent à des étoiles très brillantes qui ne scintillent presque pas.</p>`,
		},
	}
}
